"""Authentication: from a bearer token to a `Principal`, or `Unauthenticated`.

Nothing is cached: a revoked token, an expired one or a removed delegate stops working on the
very next request, on every replica.
"""

from __future__ import annotations

from jamhost.app.runtime import Runtime
from jamhost.domain.model import now_us
from jamhost.domain.refusals import Unauthenticated
from jamhost.tenancy.principal import ALL_SCOPES, Principal
from jamhost.tenancy.tokens import same_hash

MAX_TOKEN_LEN = 512


def authenticate(rt: Runtime, token: str | None) -> Principal:
    if not token or len(token) > MAX_TOKEN_LEN:
        raise Unauthenticated("a valid bearer token is required")
    h = rt.hasher.hash(token)
    if is_operator_hash(rt, h):
        return Principal(kind="operator", token_hash=h)
    creds = rt.store.credentials(h)  # one store read: token row and delegations
    record, delegations = creds.token, creds.delegations
    if record is not None:
        if not same_hash(record.token_hash, h) or not record.usable(now_us()):
            raise Unauthenticated("a valid bearer token is required")
        return Principal(kind="account", token_hash=h, account_id=record.account_id,
                         accessor=record.accessor, scopes=frozenset(record.scopes),
                         delegations=delegations)
    if delegations:
        return Principal(kind="delegate", token_hash=h, scopes=ALL_SCOPES,
                         delegations=delegations)
    raise Unauthenticated("a valid bearer token is required")


def is_operator_hash(rt: Runtime, h: bytes) -> bool:
    """Compared against every operator hash without stopping early: constant-time in the
    token."""
    found = False
    for op in rt.operator_hashes:
        found |= same_hash(op, h)
    return found

