"""Two threads claim and finish (applied, two storage writes, 2 ms of "run" off the GIL
between) 600 packages of ONE account's four services on PostgreSQL, at the store port: the
fair claim against oldest-first. Prints packages/s, the claims that came back empty with
packages pending (each then sleeps 50 ms, as a worker would) and the accumulate conflicts
(two packages of one service at once). docs/scheduling.md, "What a claim costs".

    .venv/bin/python bench/bench_claim_contention.py [fair,oldest]
    PYTHONPATH=<other tree>/src .venv/bin/python bench/bench_claim_contention.py fair
"""
# ruff: noqa: E401, E402, E501, E701, E702, S101
import hashlib
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sqlalchemy as sa
from tests.conftest import _pg_admin

from jamhost.config import JamSettings
from jamhost.domain.model import (
    ZERO_HASH,
    PackageOutcome,
    PackageRecord,
    QuotaLimits,
    StateChanges,
    StateConflict,
    now_us,
)
from jamhost.store import open_store
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.rows import package_record

BIG = 10**12
def oldest(store):
    def claim(worker, now, lease_us, **_):
        with store._write() as conn:
            seq = conn.execute(stmts._claim(t.packages.c.status == "pending", "postgres")).scalar_one_or_none()
            if seq is None: return None
            return package_record(conn.execute(stmts.MARK_CLAIMED, {"claimed": seq, "worker": worker, "lease_until": now + lease_us, "now": now, "started": now_us()}).one())
    return claim
def run(mode, n=600, services=4):
    name = f"jamhost_bench_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    store = open_store(JamSettings(store="postgres", pg_dsn=f"postgresql://postgres@127.0.0.1:5432/{name}"))
    try:
        sids = [store.create_service(owner="acct-a", code=None, code_hash=ZERO_HASH, balance=0, min_item_gas=0, min_memo_gas=0, created_by="b", storage_limit=BIG).service_id for _ in range(services)]
        for i in range(n):
            body = b"p%d" % i
            store.submit_package(PackageRecord(id=hashlib.blake2b(body, digest_size=32).digest(), service_id=sids[i % services], status="pending", body=body, size=len(body), refine_gas=1000, accumulate_gas=1000, created_at=now_us(), updated_at=now_us()), QuotaLimits(BIG, BIG, BIG), BIG, 0)
        claim = oldest(store) if mode == "oldest" else store.claim_package
        empty = [0]; done = [0]; conflicts = [0]
        def loop(w):
            while True:
                pkg = claim(w, now_us(), 10**9, max_running=2)
                if pkg is None:
                    with store.engine.connect() as c:
                        left = c.execute(sa.text("SELECT count(*) FROM jam_packages WHERE status='pending'")).scalar_one()
                    if left == 0: return
                    empty[0] += 1; time.sleep(0.05); continue
                svc = store.get_service(pkg.service_id)
                time.sleep(0.002)  # the package's run, off the GIL
                try:
                    assert store.finish_package(PackageOutcome(pkg.id, pkg.service_id, w, "applied", expected_seq=svc.receipt_seq, changes=StateChanges(storage={b"count": b"1", b"k": b"v"}), refund=100, after_units=10, units_window=1))
                except StateConflict:
                    conflicts[0] += 1
                    assert store.finish_package(PackageOutcome(pkg.id, pkg.service_id, w, "failed", failure_reason="conflict", refund=100))
                done[0] += 1
        t0 = time.perf_counter()
        ths = [threading.Thread(target=loop, args=(f"w{i}",)) for i in range(2)]
        [x.start() for x in ths]; [x.join() for x in ths]
        span = time.perf_counter() - t0
        print(mode, "packages/s %.1f" % (done[0] / span), "empty claims", empty[0], "conflicts", conflicts[0], flush=True)
    finally:
        store.close(); _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
for mode in (sys.argv[1] if len(sys.argv) > 1 else "fair,oldest").split(","):
    run(mode)
