"""Rate charging: which budget a request pays, and when. The one home of these rules and the
only caller of the limiter (app/rate_limiter.py); the rate gate (api/rate_gate.py,
`Charging.gate`), the principal dependency (api/deps.py, `unauthenticated` and
`authenticated`) and the tenant view (tenancy/view.py, `service`) only call them at their
moment of the request.

- A request with a bearer token pays its token's budget once: in the rate gate, before
  routing (so a flood over its limit costs no route, no store read); a request the gate
  could not charge pays it once authenticated.
- A request without a token is only tested in the gate; one whose token fails
  authentication pays its client address's budget (slows token guessing).
- An account's requests, all its tokens together, pay the account's budget once the token
  is known to be the account's.
- A service's budget is paid once per request per service, and only once the caller is
  authorized for it: nobody can spend another tenant's service budget.
- Operators and the admin CLI pay nothing.
"""

from __future__ import annotations

from typing import Protocol

from jamhost.tenancy.principal import Principal


class Limiter(Protocol):
    """The budgets' counters (app/rate_limiter.py): each call spends one request of a budget,
    or raises `RateLimited` when it is spent."""

    def hit_caller(self, key: str) -> None: ...

    async def spend_caller(self, key: str, *, consume: bool) -> None:
        """Spend (consume) or only test the caller budget `key`, awaitable in the ASGI gate."""

    def hit_account(self, account_id: str) -> None: ...

    def hit_service(self, service_id: int) -> None: ...


def token_key(token_hash: bytes) -> str:
    return "t:" + token_hash.hex()[:32]


def client_key(client: str | None) -> str:
    return "ip:" + (client or "?")


def gate_spending(token_hash: bytes | None, is_operator: bool,
                  client: str | None) -> tuple[str, bool] | None:
    """What the rate gate does: (caller key, whether to consume) or None (operators)."""
    if token_hash is None:
        return client_key(client), False
    if is_operator:
        return None
    return token_key(token_hash), True


class Charging:
    """The charges of one runtime's limiter (None: no limits configured)."""

    def __init__(self, limiter: Limiter | None) -> None:
        self._limiter = limiter

    @property
    def active(self) -> bool:
        """Whether any limit is configured (otherwise nothing is charged: the gate need not
        even hash the token)."""
        return self._limiter is not None

    async def gate(self, token_hash: bytes | None, is_operator: bool,
                   client: str | None) -> bool:
        """The rate gate's charge, before routing (`gate_spending`); whether the caller's
        budget was spent (then `authenticated` does not spend it again)."""
        spend = gate_spending(token_hash, is_operator, client)
        if self._limiter is None or spend is None:
            return False
        key, consume = spend
        await self._limiter.spend_caller(key, consume=consume)
        return consume

    def unauthenticated(self, client: str | None) -> None:
        if self._limiter is not None:
            self._limiter.hit_caller(client_key(client))

    def authenticated(self, who: Principal, *, gate_charged: bool) -> None:
        if self._limiter is None or who.is_operator:
            return
        if not gate_charged:
            self._limiter.hit_caller(token_key(who.token_hash))
        if who.account_id is not None:
            self._limiter.hit_account(who.account_id)

    def service(self, who: Principal, service_id: int) -> None:
        """Called by the view once `who` is authorized for `service_id`."""
        if self._limiter is None or who.is_operator or service_id in who.charged:
            return
        who.charged.add(service_id)
        self._limiter.hit_service(service_id)
