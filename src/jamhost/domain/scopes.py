"""Which services a handle may touch: the scope every listing and object lookup is filtered by."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceScope:
    """The services a handle may touch: every one (`everything`) or exactly `ids`.

    The store filters by this in the query itself. Scopes are decided by `tenancy.authz`
    and carried by the tenant view (`tenancy/view.py`), the only handle use cases and the
    engine read tenant data through. There is no public scope of every service: the
    constructor takes `ids` only (`everything` is no argument), and the one scope of every
    service is built by `tenancy.authz`, which hands it out to operators, the admin CLI and
    everyone with authz disabled; app, api and cli never name a scope
    (tests/unit/test_barrier.py).
    """

    ids: frozenset[int] = frozenset()
    everything: bool = field(default=False, init=False)

    def allows(self, service_id: int | None) -> bool:
        if self.everything:
            return True
        return service_id is not None and service_id in self.ids

