"""The runtime a use case runs in: settings, store, token hasher, policy, clock."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from jamhost.app.rate_limiter import RateLimiter
from jamhost.app.work_signal import WorkSignal
from jamhost.config import JamSettings, Settings
from jamhost.domain.model import QuotaLimits, ServiceRecord
from jamhost.pvm import get_engine
from jamhost.pvm.interface import PvmEngine
from jamhost.store import Store, open_store
from jamhost.tenancy.authz import Policy
from jamhost.tenancy.charging import Charging
from jamhost.tenancy.principal import ADMIN, Principal
from jamhost.tenancy.tokens import TokenHasher
from jamhost.tenancy.view import TenantView, account_view, service_view, view_for


@dataclass
class Runtime:
    settings: JamSettings
    store: Store
    hasher: TokenHasher
    policy: Policy
    operator_hashes: tuple[bytes, ...]
    limiter: RateLimiter | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. rate limiter, metrics
    # Told when this process queues a package: an idle worker claims at once rather than at
    # its next poll (workers elsewhere still poll: app/worker.py).
    work_ready: WorkSignal = field(default_factory=WorkSignal)

    @property
    def charging(self) -> Charging:
        """The rate charges of this runtime's limiter (tenancy/charging.py)."""
        return Charging(self.limiter)

    def view(self, who: Principal) -> TenantView:
        """`who`'s handle on tenant data: the only way a use case reads it."""
        return view_for(self.policy, who, self.store, charging=self.charging)

    def account_view(self, service: ServiceRecord) -> TenantView:
        """What `service`'s own code reaches (refine, Ψ_I, accumulate, its imports)."""
        return account_view(self.policy, service, self.store)

    def service_view(self, service_id: int) -> tuple[ServiceRecord, TenantView] | None:
        """A service whose work is due, with its account view (None: it no longer exists)."""
        return service_view(self.policy, service_id, self.store)

    @property
    def default_quota(self) -> QuotaLimits:
        q = self.settings.default_quota
        return QuotaLimits(q.pending_packages, q.storage_bytes, q.gas_per_hour)

    @property
    def pvm(self) -> PvmEngine:
        """The PVM engine `pvm_engine` names (`auto`: the native core when it is built)."""
        return get_engine(self.settings.pvm_engine)

    @staticmethod
    def gas_window(at: float | None = None) -> int:
        """Gas budgets are per fixed clock hour (UTC), numbered since the epoch."""
        return int((time.time() if at is None else at) // 3600)

    def close(self) -> None:
        self.store.close()


def build_runtime(settings: Settings | JamSettings, store: Store | None = None) -> Runtime:
    """Open the store and derive what every request needs; seed configured delegates."""
    jam = settings.jam if isinstance(settings, Settings) else settings
    store = store or open_store(jam)
    key = jam.token_hmac_key or store.get_or_create_meta("token_hmac_key", secrets.token_hex(32))
    hasher = TokenHasher(key.encode())
    rt = Runtime(settings=jam, store=store, hasher=hasher,
                 policy=Policy(jam.authz_enabled, jam.owner_is_account,
                               frozenset(jam.shared_authorizers)),
                 operator_hashes=tuple(hasher.hash(t) for t in jam.allowed_tokens),
                 limiter=_limiter(jam, store))
    seed_delegates(rt)
    rt.pvm  # noqa: B018 - choose the engine now: a missing native core warns (or fails) at start
    return rt


def _limiter(jam: JamSettings, store: Store) -> RateLimiter | None:
    if jam.rate_limit_per_minute == 0 and jam.service_rate_limit_per_minute == 0 \
            and jam.account_rate_limit_per_minute == 0:
        return None
    instance = store.get_or_create_meta("instance_id", secrets.token_hex(8))
    return RateLimiter(jam.rate_limit_storage, jam.rate_limit_per_minute,
                       jam.service_rate_limit_per_minute, namespace=f"jamhost:{instance}",
                       per_account=jam.account_rate_limit_per_minute)


def seed_delegates(rt: Runtime) -> int:
    """Grant the `service_delegates` tokens of the config (role `submitter`), idempotently.
    A service that does not exist yet is skipped; it is seeded at the next start."""
    added = 0
    view = rt.view(ADMIN)
    for sid_text, tokens in rt.settings.service_delegates.items():
        sid = int(sid_text)
        if view.get_service(sid) is None:
            continue
        writes = view.operated(sid)
        for token in tokens:
            writes.add_delegate(rt.hasher.hash(token), "submitter", created_by="config")
            added += 1
    return added
