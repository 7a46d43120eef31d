"""The store port's unscoped reads, for tests (and benchmarks) that check what was stored.
No use case can name this scope (tests/unit/test_barrier.py), and no constructor builds it
(`ServiceScope` takes no `everything` argument): it is the scope the policy hands the admin
CLI, through its view (tenancy/view.py), taken from the policy here the same way."""

from jamhost.tenancy.authz import Policy
from jamhost.tenancy.principal import ADMIN

EVERYTHING = Policy().scope(ADMIN, set())
assert EVERYTHING.everything
