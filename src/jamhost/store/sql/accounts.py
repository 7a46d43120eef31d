"""Accounts, their tokens and delegations as credentials, and the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from jamhost.domain.model import Account, AuditEvent, Credentials, Page, TokenRecord, now_us
from jamhost.store.sql import statements as stmts
from jamhost.store.sql import tables as t
from jamhost.store.sql.base import SqlBase
from jamhost.store.sql.rows import token_record


class Accounts(SqlBase):
    """The accounts, tokens and audit tables."""

    def create_account(self, account: Account) -> Account:
        with self._write() as conn:
            conn.execute(t.accounts.insert().values(
                id=account.id, name=account.name, created_at=account.created_at))
        return account

    def get_account(self, account_id: str) -> Account | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.accounts).where(t.accounts.c.id == account_id)).first()
        return Account(row.id, row.name, row.created_at) if row else None

    def list_accounts(self) -> list[Account]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.accounts).order_by(t.accounts.c.created_at))
            return [Account(r.id, r.name, r.created_at) for r in rows]

    def add_token(self, token: TokenRecord) -> TokenRecord:
        with self._write() as conn:
            conn.execute(t.tokens.insert().values(
                accessor=token.accessor, account_id=token.account_id, token_hash=token.token_hash,
                name=token.name, scopes=",".join(token.scopes), created_at=token.created_at,
                expires_at=token.expires_at, revoked_at=token.revoked_at))
        return token

    def credentials(self, token_hash: bytes) -> Credentials:
        with self._read() as conn:
            rows = conn.execute(stmts.CREDENTIALS, {"h": token_hash}).all()
        token = token_record(rows[0]) if rows[0].accessor is not None else None
        return Credentials(token, {r.delegated_service: r.delegated_role
                                   for r in rows if r.delegated_service is not None})

    def token_by_accessor(self, accessor: str) -> TokenRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.accessor == accessor)).first()
        return token_record(row) if row else None

    def list_tokens(self, account_id: str) -> list[TokenRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.tokens).where(t.tokens.c.account_id == account_id)
                                .order_by(t.tokens.c.created_at))
            return [token_record(r) for r in rows]

    def revoke_token(self, account_id: str, accessor: str, at: int) -> bool:
        with self._write() as conn:
            res = conn.execute(t.tokens.update()
                               .where(t.tokens.c.account_id == account_id,
                                      t.tokens.c.accessor == accessor,
                                      t.tokens.c.revoked_at.is_(None))
                               .values(revoked_at=at))
            return res.rowcount == 1

    def audit(self, event: AuditEvent) -> None:
        with self._write() as conn:
            conn.execute(t.audit.insert().values(
                at=event.at or now_us(), actor=event.actor[:120], action=event.action[:40],
                service_id=event.service_id, target=(event.target or None) and event.target[:200],
                detail=event.detail))

    def list_audit(self, *, action: str | None = None, cursor: int | None = None,
                   limit: int = 50) -> Page[AuditEvent]:
        a = t.audit.c
        q = sa.select(t.audit)
        if action is not None:
            q = q.where(a.action == action)
        if cursor is not None:
            q = q.where(a.seq < cursor)
        with self._read() as conn:
            rows = conn.execute(q.order_by(a.seq.desc()).limit(limit + 1)).all()
        items = [AuditEvent(r.actor, r.action, r.service_id, r.target, r.detail, r.at, r.seq)
                 for r in rows[:limit]]
        return Page(items, items[-1].seq if len(rows) > limit else None)
