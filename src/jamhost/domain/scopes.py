"""Which services a handle may touch: the scope every listing and object lookup is filtered by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceScope:
    """The services a handle may touch: every one (`everything`) or exactly `ids`.

    The store filters by this in the query itself. Scopes are decided by `tenancy.authz`
    and carried by the tenant view (`tenancy/view.py`), the only handle use cases and the
    engine read tenant data through: there is no public scope of every service (only the
    policy hands one out, to operators, the admin CLI and with authz disabled), and
    app, api and cli never name a scope (tests/unit/test_layers.py).
    """

    ids: frozenset[int] = frozenset()
    everything: bool = False

    def allows(self, service_id: int | None) -> bool:
        if self.everything:
            return True
        return service_id is not None and service_id in self.ids

