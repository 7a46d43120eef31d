"""The SQL store: one adapter for SQLite (a file, or in memory) and PostgreSQL over
SQLAlchemy 2 Core, composed of one part per aggregate.

Every quota check is a conditional UPDATE inside the same transaction as the insert it
guards, never a read followed by a write, so concurrent requests (threads, processes or
replicas on one PostgreSQL) can never accept more than a limit allows. A refused request
rolls its whole transaction back and leaves no trace. The rules of an apply are planned
outside the adapter (tenancy/apply_plan.py), as are the bounds and refusals of a submit's
quotas (tenancy/submit_quota.py) and what reconciliation's sums make (tenancy/usage.py);
the adapter persists the plan.

| part | module | tables |
|---|---|---|
| engine, transactions, retry | `base.py` | counters, meta |
| accounts, tokens, audit | `accounts.py` | accounts, tokens, audit |
| services, delegates, state reads | `services.py` | services, delegates, storage |
| preimages | `preimages.py` | preimages, blobs |
| packages, reports, attestations | `packages.py` | packages, reports, attestations, account_usage |
| claim and finish (the worker) | `claims.py` | packages, account_usage, counters, service_claims |
| accumulations, transfers, receipts | `accumulations.py` | accumulations, transfers, |
| | | lookup_requests, receipts, storage (writes) |
| export sets | `segments.py` | export_sets, segments |
| usage reconciliation | `usage.py` | all counters |
| row mappers | `rows.py` | |
| the scope filter: lookups and listings | `scoped.py` | |
"""

from __future__ import annotations

from jamhost.store.sql.accounts import Accounts
from jamhost.store.sql.claims import Claims
from jamhost.store.sql.packages import Packages
from jamhost.store.sql.services import Services
from jamhost.store.sql.usage import Reconciliation


class SqlStore(Accounts, Services, Packages, Claims, Reconciliation):
    """Store port implemented over a SQLAlchemy engine (see `jamhost.store.ports.Store`)."""


__all__ = ["SqlStore"]
