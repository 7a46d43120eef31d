"""SQL statements built once, with bind parameters, for the calls a request or a worker makes
on every package.

Building a SQLAlchemy construct (and generating its cache key) costs more Python time than
the round trip it sends: store-level submit went from 1.62 to 0.87 ms on PostgreSQL when its
statements moved here (docs/benchmarks.md). Calls then only bind values.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from jamhost.store.sql import tables as t
from jamhost.tenancy import fairness

MAX_MERGED_SERVICES = 64  # more services in one scope: one IN query instead of merged scans

# A token hash's token row (if any) and delegations (if any) in one statement: the hash,
# outer-joined to both tables; one row per delegation, the token's columns repeated.
HASH = sa.select(sa.bindparam("h", type_=t.Hash).label("h")).subquery("asked")
CREDENTIALS = sa.select(t.tokens, t.delegates.c.service_id.label("delegated_service"),
                         t.delegates.c.role.label("delegated_role")).select_from(
    HASH.outerjoin(t.tokens, t.tokens.c.token_hash == HASH.c.h)
    .outerjoin(t.delegates, t.delegates.c.token_hash == HASH.c.h))
SERVICE = sa.select(t.services).where(t.services.c.service_id == sa.bindparam("sid"))
OWNED = sa.select(t.services.c.service_id).where(t.services.c.owner == sa.bindparam("owner"))

# The three statements of a submit (SqlStore.submit_package).
NEW_PACKAGE = {kind: insert(t.packages).values(
    {name: sa.bindparam(name) for name in (
        "id", "service_id", "body", "size", "refine_gas", "accumulate_gas", "created_at",
        "updated_at")} | {"status": "pending", "attempts": 0},
).on_conflict_do_nothing().returning(t.packages.c.seq)
    for kind, insert in (("sqlite", sqlite.insert), ("postgres", postgresql.insert))}
TAKE_PENDING = t.counters.update().where(
    t.counters.c.name == "pending", t.counters.c.value < sa.bindparam("max_pending"),
).values(value=t.counters.c.value + 1)


def _take_quota() -> sa.Update:
    svc, window = t.services.c, sa.bindparam("window", type_=sa.BigInteger)
    used = sa.case((svc.gas_window == window, svc.gas_used), else_=0)
    return t.services.update().where(
        svc.service_id == sa.bindparam("sid"), svc.pending_count < sa.bindparam("max_count"),
        # written as used <= limit - gas: `used + gas` can pass 2^63-1 (bigint)
        used <= sa.bindparam("gas_room", type_=sa.BigInteger),
    ).values(pending_count=svc.pending_count + 1,
             gas_used=used + sa.bindparam("gas", type_=sa.BigInteger), gas_window=window)


TAKE_QUOTA = _take_quota()


@functools.lru_cache(maxsize=1024)
def newest_first(table: sa.Table, omit: tuple[str, ...], equal: tuple[str, ...],
                       below_cursor: bool, services: int | None, kind: str) -> sa.Select[Any]:
    """The statement behind every newest-first listing, built once per shape (which filters,
    how many services) with bind parameters `lim`, `cursor`, one per `equal` column, and the
    service ids: `sid<i>` on SQLite, the array `sids` on PostgreSQL and past
    MAX_MERGED_SERVICES (see `SqlStore._newest_first`). A request then only binds values.

    A scope of several services is answered as one index range scan per service on
    (service_id, [status,] seq), merged by seq inside one statement (SQLite: a UNION ALL of
    per-service `LIMIT` subqueries; PostgreSQL: a LATERAL join over the id array): a plan
    that does not depend on table statistics nor on how the services' rows interleave (an
    `IN (...) ORDER BY seq` either sorts every row of the tenant or walks the whole table
    backwards), in one round trip. Columns in `omit` are not read (package bodies: a
    listing never shows them)."""
    c = table.c
    q = _filtered(sa.select(*[col for col in c if col.name not in omit]), c, equal, below_cursor)
    newest, lim = c.seq.desc(), sa.bindparam("lim", type_=sa.Integer)
    if services is None:
        return q.order_by(newest).limit(lim)
    if services == 1:
        return q.where(c.service_id == sa.bindparam("sid0")).order_by(newest).limit(lim)
    if services > MAX_MERGED_SERVICES:
        return q.where(c.service_id.in_(sa.bindparam("sids", expanding=True))) \
            .order_by(newest).limit(lim)
    if kind == "postgres":
        # The same plan with the ids as one array parameter: one short statement text for
        # any number of services, which psycopg caches and prepares (a 25-part UNION ALL is
        # too long for its statement cache, and was parsed and planned on every call).
        sid = sa.func.unnest(sa.bindparam("sids", type_=postgresql.ARRAY(sa.BigInteger))) \
            .table_valued("sid").render_derived(name="s")
        p = table.alias("p")
        run = _filtered(sa.select(p.c.seq), p.c, equal, below_cursor) \
            .where(p.c.service_id == sid.c.sid).order_by(p.c.seq.desc()).limit(lim) \
            .lateral("run")
        top = sa.select(run.c.seq).select_from(sid).join(run, sa.true()) \
            .order_by(run.c.seq.desc()).limit(lim).scalar_subquery()
        return sa.select(*q.selected_columns).where(c.seq == sa.func.any(sa.func.array(top))) \
            .order_by(newest)  # the seqs first (an InitPlan), then primary-key lookups
    # The newest seqs of each service (index-only range scans), the newest `lim` of their
    # union, then those rows whole.
    runs = [q.with_only_columns(c.seq).where(c.service_id == sa.bindparam(f"sid{i}"))
            .order_by(newest).limit(lim).subquery(f"run{i}").select() for i in range(services)]
    merged = sa.union_all(*runs).subquery("merged")
    top = sa.select(merged.c.seq).order_by(merged.c.seq.desc()).limit(lim).scalar_subquery()
    return sa.select(*q.selected_columns).where(c.seq.in_(top)).order_by(newest)


def _filtered(q: sa.Select[Any], c: Any, equal: tuple[str, ...],
              below_cursor: bool) -> sa.Select[Any]:
    for name in equal:
        q = q.where(c[name] == sa.bindparam(name))
    if below_cursor:
        q = q.where(c.seq < sa.bindparam("cursor"))
    return q


# -- the worker: claim, state reads, finish ----------------------------------------------------

def _claim(condition: Any, kind: str) -> sa.Select[Any]:
    """The oldest package matching `condition` (bench_fairness.py's oldest-first baseline)."""
    p = t.packages.c
    q = sa.select(p.seq).where(condition).order_by(p.seq).limit(1)
    return q.with_for_update(skip_locked=True) if kind == "postgres" else q


# The claimed row comes back from the UPDATE itself (RETURNING): one round trip fewer.
MARK_CLAIMED = t.packages.update().where(t.packages.c.seq == sa.bindparam("claimed")).values(
    status="refining", claimed_by=sa.bindparam("worker"),
    lease_until=sa.bindparam("lease_until"), attempts=t.packages.c.attempts + 1,
    updated_at=sa.bindparam("now"), started_at=sa.bindparam("started")).returning(
    *t.packages.c)
RENEW_CLAIM = t.packages.update().where(
    t.packages.c.id == sa.bindparam("package_id"), t.packages.c.status == "refining",
    t.packages.c.claimed_by == sa.bindparam("worker")).values(lease_until=sa.bindparam("until"))


# -- fair claiming (tenancy/fairness.py) ----------------------------------------------------

CHARGE_ACCOUNT = t.account_usage.update().where(
    t.account_usage.c.owner == sa.bindparam("acct")).values(
    running=t.account_usage.c.running + 1, queued=t.account_usage.c.queued - 1,
    vtime=t.account_usage.c.vtime + sa.bindparam("cost", type_=sa.BigInteger))
NOTHING_QUEUED = t.account_usage.update().where(
    t.account_usage.c.owner == sa.bindparam("acct")).values(queued=0)
# The service's last claim, in jam_service_claims (no row until its first claim): written
# only by claims, each holding the service's account row, so it never waits.
SERVED = {kind: insert(t.service_claims).values(
    service_id=sa.bindparam("sid"), last_claimed=sa.bindparam("now"),
).on_conflict_do_update(index_elements=["service_id"], set_={"last_claimed": sa.bindparam("now")})
    for kind, insert in (("sqlite", sqlite.insert), ("postgres", postgresql.insert))}

def _sql_cost(gas: str, weight: str) -> str:
    """fairness.charge over two SQL bigint expressions, as PostgreSQL text: the formula has
    one home (tenancy/fairness.py); this only renders it."""
    big = sa.BigInteger()
    expr = fairness.charge(sa.literal_column(gas, big), sa.literal_column(weight, big),
                           lambda lo, x: sa.func.greatest(lo, x, type_=big))
    return str(sa.cast(expr, big).compile(dialect=postgresql.dialect(),
                                          compile_kwargs={"literal_binds": True}))


# The claimable account, one home for the claim's choice, its `locked_out` answer and
# preemption's choice (tenancy/fairness.py, docs/scheduling.md "Fair claiming"): a queued
# package and a free worker slot; among those, the smallest virtual time first, on a tie
# the one with fewer packages queued (a newcomer starts level with a busy account that has
# nothing running: it goes first), then the owner. SQL text over jam_account_usage.
CLAIMABLE = "queued > 0 AND running < :max_running"
FAIR_ORDER = "vtime, queued, owner"


def _choice(kind: str) -> str:
    """The claim's choice, shared by both dialects' claims (docs/scheduling.md, "Fair
    claiming"): `expired`, a package whose lease ran out; else `acct`, the account with the
    smallest virtual time, a queued package and a free slot; `svc`, its least recently
    claimed service with a pending package (one probe of (service_id, status, seq) per
    service of the account, written as a correlated `LIMIT 1` rather than EXISTS, which
    PostgreSQL turned into a semi-join scanning every pending package of the runtime per
    service whenever its statistics were stale); `head`, that service's oldest pending
    package and its declared gas. PostgreSQL locks the rows it picks (see
    _pg_claim); SQLite runs it under `BEGIN IMMEDIATE`, which excludes other writers."""
    skip = "FOR UPDATE SKIP LOCKED" if kind == "postgres" else ""
    return f"""WITH expired AS (
    SELECT seq FROM jam_packages
    WHERE status = 'refining' AND lease_until < :now
    ORDER BY seq LIMIT 1 {skip}
), acct AS (
    SELECT owner FROM jam_account_usage
    WHERE {CLAIMABLE} AND NOT EXISTS (SELECT 1 FROM expired)
    ORDER BY {FAIR_ORDER} LIMIT 1 {skip}
), {_service_head(kind)}"""


def _service_head(kind: str) -> str:
    """The part of the choice within the account `acct` (a CTE before it): `svc`, its least
    recently claimed service with a pending package, and `head`, that service's oldest
    pending package and its declared gas (PostgreSQL: the package row locked SKIP LOCKED)."""
    head_lock = "FOR UPDATE OF p SKIP LOCKED" if kind == "postgres" else ""
    return f"""svc AS (
    SELECT s.service_id FROM jam_services s JOIN acct ON s.owner = acct.owner
    LEFT JOIN jam_service_claims c ON c.service_id = s.service_id
    WHERE (SELECT q.seq FROM jam_packages q
           WHERE q.service_id = s.service_id AND q.status = 'pending'
           ORDER BY q.seq LIMIT 1) IS NOT NULL
    ORDER BY COALESCE(c.last_claimed, 0), s.service_id LIMIT 1
), head AS (
    SELECT p.seq, p.service_id, p.refine_gas + p.accumulate_gas AS gas
    FROM jam_packages p JOIN svc ON p.service_id = svc.service_id
    WHERE p.status = 'pending'
    ORDER BY p.seq LIMIT 1 {head_lock}
)"""


# The head package of a given account :acct (claim_preempting, once it has chosen and, on
# PostgreSQL, locked the account): the same service and package rule as the claim's choice.
ACCOUNT_HEAD = {kind: sa.text(f"""
WITH acct AS (SELECT CAST(:acct AS text) AS owner), {_service_head(kind)}
SELECT head.seq, head.service_id, head.gas FROM head
""").columns(*map(sa.column, ("seq", "service_id", "gas"))) for kind in ("sqlite", "postgres")}


# The choice in one read, for the claim by steps (SqlStore._claim_by_steps: SQLite's, and
# PostgreSQL's after a drift), which then charges the account (fairness.cost, in Python),
# marks the service served and the package claimed. `owner` without a `seq`: the account's
# queued count drifted (repaired by the caller).
CHOICE = {kind: sa.text(f"""
{_choice(kind)}
SELECT (SELECT seq FROM expired) AS expired, (SELECT owner FROM acct) AS owner,
       head.seq, head.service_id, head.gas
FROM (SELECT 1) AS one LEFT JOIN head ON true
""").columns(*map(sa.column, ("expired", "owner", "seq", "service_id", "gas")))
    for kind in ("sqlite", "postgres")}


def _pg_claim() -> sa.TextClause:
    """PostgreSQL: the whole claim in one statement (run in autocommit: one round trip). The
    expired lease first; else the fair choice (_choice), the account charged
    fairness.charge(gas, weight) (the weights, clamped by fairness.weight_of, passed as two
    arrays), the service marked served, the package marked claimed. `next_owner` tells an
    idle runtime (NULL, no row claimed) from a drifted queued count (an owner, no row
    claimed: the caller repairs it in SqlStore's claim by steps, as SQLite always claims).

    The account row is locked `FOR UPDATE SKIP LOCKED`: concurrent claimers take the next
    account rather than wait, and never claim one package twice nor pass an account's
    worker limit. The row it skipped may be the only claimable account's (its other
    package's finish holds the row until it commits, or another worker's claim does):
    `locked_out` is then that account (in the statement's snapshot: queued work, a free
    slot, not claimed), and the caller waits for its lock (WAIT_FOR_ACCOUNT) and claims
    again, with a fresh snapshot. (Waiting inside this statement, `FOR UPDATE` without SKIP
    LOCKED, would choose the service from the snapshot taken before the wait: two workers
    then ran packages of one service at once, and the second's accumulate conflicted.)"""
    cost = _sql_cost("head.gas", """COALESCE(
            (SELECT w.weight FROM unnest(CAST(:weight_owners AS text[]),
                                         CAST(:weight_values AS bigint[])) AS w(owner, weight)
             WHERE w.owner = u.owner), :default_weight)""")
    return sa.text(f"""
{_choice("postgres")}, charged AS (
    UPDATE jam_account_usage u
    SET running = u.running + 1, queued = u.queued - 1, vtime = u.vtime + {cost}
    FROM acct, head WHERE u.owner = acct.owner
    RETURNING u.owner
), served AS (
    INSERT INTO jam_service_claims (service_id, last_claimed)
    SELECT head.service_id, :now FROM head
    ON CONFLICT (service_id) DO UPDATE SET last_claimed = EXCLUDED.last_claimed
    RETURNING service_id
), chosen AS (
    SELECT seq FROM expired UNION ALL SELECT seq FROM head
), claimed AS (
    UPDATE jam_packages p
    SET status = 'refining', claimed_by = :worker, lease_until = :lease_until,
        attempts = p.attempts + 1, updated_at = :now,
        started_at = :started
    FROM chosen WHERE p.seq = chosen.seq
    RETURNING p.*
)
SELECT claimed.*, (SELECT owner FROM acct) AS next_owner, CASE
    WHEN NOT EXISTS (SELECT 1 FROM acct) AND NOT EXISTS (SELECT 1 FROM expired) THEN (
        SELECT owner FROM jam_account_usage WHERE {CLAIMABLE}
        ORDER BY {FAIR_ORDER} LIMIT 1) END AS locked_out
FROM (SELECT 1) AS one LEFT JOIN claimed ON true
""")


PG_CLAIM = _pg_claim()
# Wait until whoever holds the account row (a finish, a claim) commits; taken and released
# at once in autocommit. FOR SHARE conflicts with their row locks, not with other waiters.
WAIT_FOR_ACCOUNT = sa.text("SELECT 1 FROM jam_account_usage WHERE owner = :owner FOR SHARE")
# The wait is bounded: a transaction that holds an account row for long (a psql session, a
# hung finish, reconcile_usage updating every account row in one transaction) must not hold
# every worker's claim. The connection's lock_timeout is set for the wait only, and reset.
WAIT_TIMEOUT = "250ms"
SET_LOCK_TIMEOUT = sa.text("SELECT set_config('lock_timeout', :timeout, false)")
# Claims after a wait, at most: each one follows a commit by the row's holder, so the loop
# never spins; two workers on one account hand its row back and forth (a finish takes it at
# its first statement), and 4 tries still came back empty 42 to 118 times in 600 claims of
# two threads at the store port (bench/bench_claim_contention.py, 2026-12-02), 16 tries 4.
LOCKED_OUT_RETRIES = 16

# -- per-account limits at submit and service creation --------------------------------------

OWNER_OF = sa.select(t.services.c.owner).where(t.services.c.service_id == sa.bindparam("sid"))
_au = t.account_usage.c
_other = _au.owner != sa.bindparam("acct")
_active = sa.or_(_au.queued > 0, _au.running > 0)
OTHERS = sa.select(
    sa.func.coalesce(sa.func.sum(sa.case((sa.and_(_other, _au.pending > 0), 1), else_=0)), 0)
    .label("busy"),
    sa.func.min(sa.case((sa.and_(_other, _active), _au.vtime))).label("vmin"),
    sa.func.coalesce(sa.func.max(sa.case((_other, _au.vtime))), 0).label("vmax"),
    # the submitting account itself: 1 when it is idle (or has no row yet), else 0
    sa.func.coalesce(sa.func.min(sa.case((sa.not_(_other), sa.case((_active, 0), else_=1)))),
                     1).label("idle"),
)
# The other accounts' running packages (at most the number of workers: the status index),
# for where their work in service started (fairness.in_service_start).
RUNNING_CHARGES = sa.select(
    t.services.c.owner, _au.vtime, t.packages.c.refine_gas + t.packages.c.accumulate_gas,
).select_from(t.packages.join(t.services, t.services.c.service_id == t.packages.c.service_id)
              .join(t.account_usage, _au.owner == t.services.c.owner)
              ).where(t.packages.c.status == "refining", _other)
TAKE_ACCOUNT_PENDING = t.account_usage.update().where(
    _au.owner == sa.bindparam("acct"), _au.pending < sa.bindparam("room"),
).values(pending=_au.pending + 1, queued=_au.queued + 1, vtime=sa.case(
    (sa.and_(_au.queued == 0, _au.running == 0,
             _au.vtime < sa.bindparam("start", type_=sa.BigInteger)),
     sa.bindparam("start", type_=sa.BigInteger)), else_=_au.vtime))
TAKE_ACCOUNT_SERVICE = t.account_usage.update().where(
    _au.owner == sa.bindparam("acct"), _au.services < sa.bindparam("max_services"),
).values(services=_au.services + 1)
RELEASE_ACCOUNT = t.account_usage.update().where(
    _au.owner == OWNER_OF.scalar_subquery()).values(
    pending=_au.pending - 1, running=_au.running - 1,
    vtime=_au.vtime - sa.bindparam("refund", type_=sa.BigInteger))
# -- cooperative preemption (app/preemption.py, docs/scheduling.md) ------------------------
# The account a worker running a package of service :sid may run first, nested: the fair
# rule's next account among those that have a queued package, no package running (which
# also keeps them within any worker limit of 1 or more) and a virtual time below the running
# package's account. PostgreSQL locks its row as the claim's choice does (SKIP LOCKED), so
# a preempting worker and a claiming one never both charge it; ACCOUNT_HEAD, CHARGE_ACCOUNT,
# SERVED and MARK_CLAIMED then take its package as a claim does (Claims._take).


def _preempting_account(kind: str) -> sa.TextualSelect:
    """The claimable accounts (CLAIMABLE, FAIR_ORDER) ahead of the running package's
    account (fairness.ahead: no package running and a virtual time below its)."""
    skip = "FOR UPDATE OF u SKIP LOCKED" if kind == "postgres" else ""
    ahead = _sql_ahead("vtime", "running", """(SELECT r.vtime FROM jam_account_usage r
  WHERE r.owner = (SELECT s.owner FROM jam_services s WHERE s.service_id = :sid))""")
    return sa.text(f"""
SELECT owner FROM jam_account_usage u
WHERE {CLAIMABLE}
  AND owner != (SELECT s.owner FROM jam_services s WHERE s.service_id = :sid)
  AND {ahead}
ORDER BY {FAIR_ORDER} LIMIT 1 {skip}
""").columns(sa.column("owner"))


def _sql_ahead(vtime: str, running: str, other_vtime: str) -> str:
    """fairness.ahead over SQL expressions, as text both dialects read: the rule has one
    home (tenancy/fairness.py); this only renders it."""
    big = sa.BigInteger()
    expr = fairness.ahead(sa.literal_column(vtime, big), sa.literal_column(running, big),
                          sa.literal_column(other_vtime, big), sa.and_)
    return str(expr.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True}))


PREEMPTING_ACCOUNT = {kind: _preempting_account(kind) for kind in ("sqlite", "postgres")}
# The virtual times and running counts of some accounts (accounts_behind: which of the
# accounts running in one process a newly claimed package's account is ahead of).
VTIMES = sa.select(_au.owner, _au.vtime, _au.running, _au.queued).where(
    _au.owner.in_(sa.bindparam("owners", expanding=True)))

_mine = t.services.alias("mine")
QUEUE_AHEAD = sa.select(sa.func.count()).select_from(t.packages).where(
    t.packages.c.status == "pending", t.packages.c.seq < sa.bindparam("seq"),
    t.packages.c.service_id.in_(sa.select(_mine.c.service_id).where(
        _mine.c.owner == sa.bindparam("acct"))))

STORAGE_VALUE = sa.select(t.storage.c.value).where(
    t.storage.c.service_id == sa.bindparam("sid"), t.storage.c.key == sa.bindparam("key"))
STORAGE_DELETE = t.storage.delete().where(
    t.storage.c.service_id == sa.bindparam("sid"), t.storage.c.key == sa.bindparam("key"))
# The apply's reads and writes of the touched rows (SqlStore._apply, tenancy/apply_plan.py):
# one statement per kind of row, whatever the number of keys.
STORAGE_VALUES = sa.select(t.storage.c.key, t.storage.c.value).where(
    t.storage.c.service_id == sa.bindparam("sid"),
    t.storage.c.key.in_(sa.bindparam("keys", expanding=True)))
STORAGE_DELETE_MANY = t.storage.delete().where(
    t.storage.c.service_id == sa.bindparam("sid"),
    t.storage.c.key.in_(sa.bindparam("keys", expanding=True)))
_request_key = sa.tuple_(t.lookup_requests.c.hash, t.lookup_requests.c.length)
REQUESTS_PRESENT = sa.select(t.lookup_requests.c.hash, t.lookup_requests.c.length).where(
    t.lookup_requests.c.service_id == sa.bindparam("sid"),
    _request_key.in_(sa.bindparam("keys", expanding=True)))
REQUESTS_DELETE = t.lookup_requests.delete().where(
    t.lookup_requests.c.service_id == sa.bindparam("sid"),
    _request_key.in_(sa.bindparam("keys", expanding=True)))
PREIMAGES_PRESENT = sa.select(t.preimages.c.hash).where(
    t.preimages.c.service_id == sa.bindparam("sid"),
    t.preimages.c.hash.in_(sa.bindparam("hashes", expanding=True)))
SERVICE_PREIMAGE = sa.select(t.blobs.c.data).join(
    t.preimages, t.preimages.c.hash == t.blobs.c.hash).where(
    t.preimages.c.hash == sa.bindparam("hash"),
    t.preimages.c.service_id == sa.bindparam("sid"))

# |v| from the size column and v[start-1 .. +n] (SQL positions count from 1): a window read of
# historical_lookup, without the rest of the blob (substr of a BLOB / bytea is in octets).
SERVICE_PREIMAGE_WINDOW = sa.select(
    t.blobs.c.size,
    sa.func.substr(t.blobs.c.data, sa.bindparam("start"), sa.bindparam("n")),
).join(t.preimages, t.preimages.c.hash == t.blobs.c.hash).where(
    t.preimages.c.hash == sa.bindparam("hash"),
    t.preimages.c.service_id == sa.bindparam("sid"))

# SQLite: |v| and the rowid of the blob row, for its incremental blob read.
SERVICE_PREIMAGE_ROWID = sa.select(
    t.blobs.c.size, sa.literal_column("jam_blobs.rowid"),
).join(t.preimages, t.preimages.c.hash == t.blobs.c.hash).where(
    t.preimages.c.hash == sa.bindparam("hash"),
    t.preimages.c.service_id == sa.bindparam("sid"))

FINISH = t.packages.update().where(
    t.packages.c.id == sa.bindparam("package_id"), t.packages.c.status == "refining",
    t.packages.c.claimed_by == sa.bindparam("worker"),
).values(status=sa.bindparam("status"), updated_at=sa.bindparam("at"), lease_until=None,
         failure_reason=sa.bindparam("failure_reason"), detail=sa.bindparam("detail"),
         report_hash=sa.bindparam("report_hash"))
RELEASE_PENDING = t.counters.update().where(t.counters.c.name == "pending").values(
    value=t.counters.c.value - 1)
RELEASE_SERVICE = t.services.update().where(
    t.services.c.service_id == sa.bindparam("sid")).values(
    pending_count=t.services.c.pending_count - 1)

# PostgreSQL: FINISH and RELEASE_PENDING in one statement (a round trip fewer), in the
# lock order (store/sql/claims.py, finish_package): the package row, then the counter row,
# released only if this worker still held the package (`held` is then 1). The account row
# is the finish's last statement (RELEASE_ACCOUNT), not this one.
PG_FINISH = sa.text("""
WITH fin AS (
    UPDATE jam_packages
    SET status = :status, updated_at = :at, lease_until = NULL,
        failure_reason = :failure_reason, detail = :detail, report_hash = :report_hash
    WHERE id = :package_id AND status = 'refining' AND claimed_by = :worker
    RETURNING service_id
), pend AS (
    UPDATE jam_counters SET value = value - 1
    WHERE name = 'pending' AND EXISTS (SELECT 1 FROM fin)
    RETURNING 1
)
SELECT (SELECT count(*) FROM fin) AS held
""")

# Units charged after the run (tenancy/tariff.py), into the gas usage of the apply's hour.
def charge_after(units: Any, window: Any) -> dict[str, Any]:
    """The service columns that add `units` to the gas usage of hour `window`."""
    svc = t.services.c
    return {"gas_used": sa.case((svc.gas_window == window, svc.gas_used + units), else_=units),
            "gas_window": window}


# The apply's one UPDATE of the service row (SqlStore._apply), built once per shape: which
# columns it sets to a value (`v_<column>`), which counters it moves by a bound amount, and
# whether it charges units after the run (`units` into hour `window`). A finish then binds
# values only (store/sql/direct.py runs it on SQLite's cursor).
SERVICE_DELTAS = {"d_items": "state_items", "d_octets": "state_octets",
                  "d_bytes": "storage_used", "d_pending": "pending_count"}


@functools.lru_cache(maxsize=256)
def service_write(names: frozenset[str]) -> sa.Update:
    svc = t.services.c
    values: dict[str, Any] = {}
    for name in sorted(names):
        if name in SERVICE_DELTAS:
            col = SERVICE_DELTAS[name]
            values[col] = svc[col] + sa.bindparam(name, type_=sa.BigInteger)
        elif name == "units":
            values.update(charge_after(sa.bindparam("units", type_=sa.BigInteger),
                                       sa.bindparam("window", type_=sa.BigInteger)))
        elif name.startswith("v_"):
            values[name[2:]] = sa.bindparam(name, type_=svc[name[2:]].type)
        elif name != "window":
            raise ValueError(f"no service write for {name!r}")
    return t.services.update().where(svc.service_id == sa.bindparam("sid")).values(values)


def _lock_service(expected: bool) -> sa.Update:
    svc = t.services.c
    cond = [svc.service_id == sa.bindparam("sid")]
    if expected:  # optimistic concurrency: the state the accumulate read is still current
        cond.append(svc.receipt_seq == sa.bindparam("expected_seq"))
    return t.services.update().where(*cond).values(receipt_seq=svc.receipt_seq).returning(
        svc.root, svc.receipt_seq, svc.storage_used, svc.owner)


LOCK_SERVICE = {expected: _lock_service(expected) for expected in (False, True)}
