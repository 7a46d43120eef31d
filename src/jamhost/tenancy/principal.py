"""Who is calling: the principal a valid token resolves to, or the machine's own admin."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_SCOPES = frozenset({"read", "submit", "manage"})

#: Principals that act on every service: an operator token (`runtime.jam.allowed_tokens`)
#: and the admin CLI, which works on the store with no token (whoever can read the config
#: and reach the store already holds every key).
OPERATOR_KINDS = frozenset({"operator", "admin"})
#: The kind of the principal of a service's own code (`service_code`).
SERVICE_CODE = "service"


@dataclass(frozen=True)
class Principal:
    """A caller. `kind`: `operator` (an operator token), `admin` (the admin CLI, `ADMIN`),
    `account` (an account token), `delegate` (a token that is only known through
    delegations) or `service` (a service's own code the runtime runs: `service_code`). An
    account token may hold delegations too."""

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
        """Operators and the admin CLI: every service, never rate-charged."""
        return self.kind in OPERATOR_KINDS

    @property
    def is_service_code(self) -> bool:
        """A service's own code run by the runtime (refine, Ψ_I, accumulate), no request:
        it reaches its account's services (`authz.Policy.import_scope`), it submits nothing."""
        return self.kind == SERVICE_CODE

    @property
    def label(self) -> str:
        """Who acted, for `created_by` columns: never the token, only public handles."""
        if self.kind == "admin":
            return "admin-cli"
        if self.is_operator:
            return "operator:" + self.token_hash.hex()[:12]
        if self.account_id:
            return f"account:{self.account_id}:{self.accessor}"
        return "delegate:" + self.token_hash.hex()[:12]


#: The admin CLI (`jamhost accounts|tokens|services|delegates|quotas ...`) and what runs on
#: the machine's behalf (`jamhost demo`): an explicit principal with its own view, where the
#: use cases once took `who=None` and skipped every check.
ADMIN = Principal(kind="admin", token_hash=b"")


def service_code(owner: str) -> Principal:
    """The principal of `owner`'s service code when the runtime runs it (the tenant view's
    `account_view`): that account, no token, reading only."""
    return Principal(kind=SERVICE_CODE, token_hash=b"", account_id=owner,
                     scopes=frozenset({"read"}))
