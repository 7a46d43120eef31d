"""Who is calling: the principal a valid token resolves to."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_SCOPES = frozenset({"read", "submit", "manage"})


@dataclass(frozen=True)
class Principal:
    """A caller. `kind`: `operator`, `account` (an account token) or `delegate` (a token that
    is only known through delegations). An account token may hold delegations too."""

    kind: str
    token_hash: bytes
    account_id: str | None = None
    accessor: str | None = None
    scopes: frozenset[str] = ALL_SCOPES
    delegations: dict[int, str] = field(default_factory=dict)  # service_id -> role
    # Services whose rate budget this request already paid: a principal lives for one
    # request, and one request is charged once per service however often it is checked.
    charged: set[int] = field(default_factory=set, compare=False, repr=False)

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def label(self) -> str:
        """Who acted, for `created_by` columns: never the token, only public handles."""
        if self.is_operator:
            return "operator:" + self.token_hash.hex()[:12]
        if self.account_id:
            return f"account:{self.account_id}:{self.accessor}"
        return "delegate:" + self.token_hash.hex()[:12]
