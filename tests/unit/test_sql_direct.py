"""`store/sql/direct.py` against SQLAlchemy on a real SQLite database: a `Direct` statement
sends the SQL `conn.execute` would, with the same parameters, in the same transaction, and
answers the same rows (attributes included), the same row counts and the same exceptions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jamhost.store.sql import tables as t
from jamhost.store.sql.direct import Direct


@pytest.fixture
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    t.metadata.create_all(engine)
    return engine


RECEIPT = {"service_id": 7, "seq": 1, "prev_root": b"\x00" * 32, "new_root": b"\x01" * 32,
           "entry_type": "package", "hash": b"\x02" * 32, "processed_at": 5}


def test_a_direct_statement_answers_what_sqlalchemy_answers(engine: sa.Engine) -> None:
    insert = Direct(t.receipts.insert())
    by_seq = Direct(sa.select(t.receipts).where(t.receipts.c.service_id == sa.bindparam("sid"))
                    .order_by(t.receipts.c.seq))
    with engine.connect() as conn, conn.begin():
        assert insert.run(conn, [RECEIPT, {**RECEIPT, "seq": 2}]) == 2  # executemany
        mine = by_seq.rows(conn, {"sid": 7})
        theirs = list(conn.execute(by_seq.stmt, {"sid": 7}))
        assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
        assert [r.seq for r in mine] == [1, 2] and mine[0].hash == b"\x02" * 32
        assert by_seq.first(conn, {"sid": 8}) is None
        assert by_seq.rows(conn, {"sid": 8}) == []
    with engine.connect() as conn:  # committed: the same transaction as the store's
        assert conn.execute(sa.select(sa.func.count()).select_from(t.receipts)).scalar() == 2


def test_returning_limits_and_scalars(engine: sa.Engine) -> None:
    newest = Direct(sa.select(t.receipts.c.seq).order_by(t.receipts.c.seq.desc()).limit(1))
    bump = Direct(t.receipts.update().where(t.receipts.c.seq == sa.bindparam("s"))
                  .values(processed_at=t.receipts.c.processed_at + 1)
                  .returning(t.receipts.c.processed_at))
    with engine.connect() as conn, conn.begin():
        Direct(t.receipts.insert()).run(conn, [RECEIPT, {**RECEIPT, "seq": 3}])
        assert newest.scalar(conn, {}) == 3  # the LIMIT the statement carries
        assert bump.first(conn, {"s": 3}).processed_at == 6
        assert bump.first(conn, {"s": 99}) is None
        touch = Direct(t.receipts.update().where(t.receipts.c.seq <= sa.bindparam("s"))
                       .values(processed_at=0))
        assert touch.run(conn, {"s": 3}) == 2
        assert touch.run(conn, {"s": 0}) == 0


def test_driver_errors_are_sqlalchemys(engine: sa.Engine) -> None:
    insert = Direct(t.receipts.insert())
    with engine.connect() as conn, conn.begin():
        insert.run(conn, RECEIPT)
        with pytest.raises(sa.exc.IntegrityError):  # the same primary key again
            insert.run(conn, RECEIPT)


def test_what_direct_does_not_take(engine: sa.Engine) -> None:
    many = Direct(sa.select(t.receipts).where(
        t.receipts.c.seq.in_(sa.bindparam("seqs", expanding=True))))
    with engine.connect() as conn, pytest.raises(ValueError):
        many.rows(conn, {"seqs": [1, 2]})
