"""Authorization: the one place that decides whether a principal may act on a service.

Rules (SPEC §1, §3):
- operators may do everything;
- scopes always apply (`read`, `submit`, `manage`), authz on or off;
- with authz disabled, any valid token may act on any service (operator-only stays so);
- with `owner_is_account`, an account's tokens act on the services that account owns;
- delegates act on their one service: `reader` reads, `submitter` reads and submits; managing
  a service (code, delegates) is for its owner or an operator only;
- a package's authorizer (Ψ_I, GP 0.7.2 §B.3) is code of the package's own service or of
  another service of the same owner, which the submitter may also submit to; with authz
  disabled, of any service; and, for every tenant, of a runtime-wide authorizer the operator
  lists in `runtime.jam.shared_authorizers` (its code only: the service stays the operator's);
- a package's imports resolve among the exports of its owner's services only (with authz
  disabled, of any service's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jamhost.domain.model import ServiceRecord
from jamhost.domain.refusals import BadRequest, Forbidden, NotFound
from jamhost.domain.scopes import ServiceScope
from jamhost.tenancy.principal import Principal


def _every_service() -> ServiceScope:
    """The scope of every service, built here only: `ServiceScope` takes no `everything`
    argument (tests/unit/test_barrier.py holds it), and the policy hands this one out to
    operators, the admin CLI and everyone with authz disabled; no use case can name it."""
    scope = ServiceScope()
    object.__setattr__(scope, "everything", True)  # a frozen field no constructor sets
    return scope


_EVERYTHING = _every_service()

MAX_OWNER = 200  # characters of a service's owner (an account id, or a free label)

ROLE_ACTIONS = {"reader": frozenset({"read"}), "submitter": frozenset({"read", "submit"})}


@dataclass(frozen=True)
class Policy:
    authz_enabled: bool = True
    owner_is_account: bool = True
    shared_authorizers: frozenset[int] = frozenset()
    """Services whose code every package may name as its authorizer (operator's choice)."""

    def require_scope(self, who: Principal, action: str) -> None:
        if not who.is_operator and action not in who.scopes:
            raise Forbidden(f"the token lacks the '{action}' scope")

    def require_operator(self, who: Principal) -> None:
        if not who.is_operator:
            raise Forbidden("this action is for operators only")

    def owns(self, who: Principal, service: ServiceRecord) -> bool:
        return (self.owner_is_account and who.account_id is not None
                and service.owner == who.account_id)

    def may_administer(self, who: Principal, service: ServiceRecord) -> bool:
        """Upgrading code and managing delegates: the owner or an operator, never a delegate.
        With authz disabled, any token with `manage` (SPEC §3)."""
        if who.is_operator:
            return True
        if "manage" not in who.scopes:
            return False
        return not self.authz_enabled or self.owns(who, service)

    def may(self, who: Principal, service: ServiceRecord | None, action: str) -> bool:
        """May `who` do `action` (read/submit/manage) on `service`? A missing service is
        treated like a foreign one, so the answer never reveals whether an id exists."""
        if who.is_operator:
            return True
        if action not in who.scopes:
            return False
        if not self.authz_enabled:
            return True
        if service is None:
            return False
        if self.owns(who, service):
            return True
        role = who.delegations.get(service.service_id)
        return role is not None and action in ROLE_ACTIONS.get(role, frozenset())

    def require(self, who: Principal, service: ServiceRecord | None, action: str) -> None:
        if not self.may(who, service, action):
            if not who.is_operator and action not in who.scopes:
                raise Forbidden(f"the token lacks the '{action}' scope")
            raise Forbidden("not authorized for this service")

    def may_authorize_with(self, who: Principal, package_service: ServiceRecord,
                           auth_service: ServiceRecord | None) -> bool:
        """May a package of `package_service` run `auth_service`'s code as its authorizer?
        A runtime-wide authorizer (`shared_authorizers`) serves every package; otherwise the
        authorizer's service must be the package's owner's, and at submission (`who` a
        request's principal) one the submitter may submit to. The worker checks it again as
        the package service's own code (`who.is_service_code`), which submits nothing: the
        owner rule alone. A missing service is refused like a foreign one."""
        if auth_service is None:
            return False
        if auth_service.service_id in self.shared_authorizers:
            return True
        if not who.is_service_code and not self.may(who, auth_service, "submit"):
            return False
        if not self.authz_enabled:
            return True
        return (auth_service.service_id == package_service.service_id
                or auth_service.owner == package_service.owner)

    def import_scope(self, owned: set[int]) -> ServiceScope:
        """What a service's own code reaches (its `account reach`): the exported segments
        a package may import, the other accounts accumulate may read, credit or eject.
        `owned`, the services of the service's owner; with authz disabled, every service."""
        return _EVERYTHING if not self.authz_enabled else ServiceScope(ids=frozenset(owned))

    def require_service(self, who: Principal, service: ServiceRecord | None,
                        action: str) -> ServiceRecord:
        """The service, if `who` may `action` it: 403 for a foreign or unknown id (no
        existence oracle for tenants), 404 only for callers who could see it if it existed."""
        self.require(who, service, action)
        if service is None:
            raise NotFound("no such service")
        return service

    def require_administer(self, who: Principal, service: ServiceRecord, what: str) -> None:
        """Code upgrades and delegates (`what`): the owner or an operator, never a delegate."""
        if not self.may_administer(who, service):
            raise Forbidden(f"only the owner or an operator may {what}")

    def require_account(self, who: Principal, account_id: str) -> None:
        """Acting on an account and its tokens: operators, or that account's own token with
        `manage`. Another account's id is refused whether or not it exists."""
        if who.is_operator:
            return
        if who.account_id != account_id:
            raise Forbidden("not authorized for this account")
        self.require_scope(who, "manage")

    def require_grantable(self, who: Principal, scopes: frozenset[str]) -> None:
        """A token cannot grant scopes it does not have (operators grant any)."""
        if not who.is_operator and not scopes <= who.scopes:
            raise Forbidden("a token cannot grant scopes it does not have")

    def service_owner(self, who: Principal, owner: str | None, *,
                      is_account: Callable[[str], bool]) -> str:
        """Who a new service belongs to: what an operator names, else the caller's account
        (owner_is_account; without it only operators create services). A tenant naming
        another owner is refused (403); an operator must name one (1 to 200 printable
        characters), and with `owner_is_account` the owner must be an existing account
        (`is_account`, the view's store-wide read), both 400."""
        if who.is_operator:
            if (owner is None or not owner.strip() or len(owner) > MAX_OWNER
                    or not owner.isprintable()):
                raise BadRequest(f"owner is required (1 to {MAX_OWNER} printable characters)")
            chosen = owner
        else:
            self.require_scope(who, "manage")
            if not self.owner_is_account or who.account_id is None:
                raise Forbidden("only operators create services in this runtime")
            if owner is not None and owner != who.account_id:
                raise Forbidden("only operators may create a service for another owner")
            chosen = who.account_id
        if self.owner_is_account and not is_account(chosen):
            raise BadRequest("owner must be an existing account id")
        return chosen

    def may_set_balance(self, who: Principal) -> bool:
        """A balance is money the operator grants (`credit`): a tenant naming its own
        would mint it. The refusal: `writes.ServiceCreation.require_balance_setter`."""
        return who.is_operator

    def sees_every_service(self, who: Principal) -> bool:
        """Operators and the admin CLI see every service's accumulator root
        (`/system/status`)."""
        return who.is_operator

    def require_unscoped_upload(self, who: Principal) -> None:
        """A preimage without a service: operators only when authz is enabled (SPEC §3)."""
        if self.authz_enabled and not who.is_operator:
            raise BadRequest("service_id is required")
        self.require_scope(who, "submit")

    def scope_owner(self, who: Principal) -> str | None:
        """The account whose owned services are in `who`'s read scope, if any."""
        if who.account_id and self.owner_is_account and self.authz_enabled:
            return who.account_id
        return None

    def scope(self, who: Principal, owned: set[int]) -> ServiceScope:
        """The services whose objects `who` may read: the barrier for every listing and get.
        `owned` is the set of services whose owner is the caller's account."""
        if who.is_operator or not self.authz_enabled:
            return _EVERYTHING if (who.is_operator or "read" in who.scopes) else ServiceScope()
        if "read" not in who.scopes:
            return ServiceScope()
        ids = set(who.delegations)
        if self.owner_is_account:
            ids |= owned
        return ServiceScope(ids=frozenset(ids))
