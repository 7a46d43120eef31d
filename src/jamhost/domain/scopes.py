"""Which services a handle may touch: the scope every listing and object lookup is filtered by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceScope:
    """The services a handle may touch: every one (`everything`) or exactly `ids`.

    The store filters by this in the query itself, so a caller cannot forget the filter
    (the "barrier view" of STYLE.md).
    """

    ids: frozenset[int] = frozenset()
    everything: bool = False

    def allows(self, service_id: int | None) -> bool:
        if self.everything:
            return True
        return service_id is not None and service_id in self.ids


EVERYTHING = ServiceScope(everything=True)
