"""The store port's unscoped reads, for tests that check what was stored. No use case can
name this scope (tests/unit/test_barrier.py): the policy hands it to operators and the admin
CLI only, through their views (tenancy/view.py)."""

from jamhost.domain.scopes import ServiceScope

EVERYTHING = ServiceScope(everything=True)
