"""What a package is charged beyond GP gas, in jamhost's own units: the one place the rates
and their total live.

GP gas is fixed by the conformance vectors, and some work a tenant's package makes the
runtime do is not priced by it. jamhost charges that work as *units* that count like gas in
the service's hourly budget (`gas_per_hour`) and in the fair scheduler's claim cost
(tenancy/fairness.py). Everything below is known from what the package declares and from the
metadata of the blobs it names, so the charge is known at submission and is the same number
when the package finishes (the scheduler's refund gives back unused refine gas only, never
these units). Small packages are charged nothing.

Kinds and rates:

- *erasure coding* of the bundle and the exports: tenancy/erasure_gas.py (its rule and
  rates, unchanged: `GAS_PER_EXPORT` per exported segment, `GAS_PER_BUNDLE_PIECE` per
  bundle piece after the first);
- *code loading*: each invocation of a package that loads service code (each work item's
  refine, and Ψ_I when the package names an authorizer) is charged

      CODE_UNITS · max(0, |code| − FREE_CODE_OCTETS) / CODE_OCTETS_PER_UNITS   (rounded up)

  units. The first execution of an instruction costs its decoding (about 8 ns for a
  two-octet instruction on the native core, 3.7 ns for a one-octet one, against 1.4 ns per gas
  of plain execution) and loading the blob costs a copy and a digest (0.5 ms for 3.9 MB): one
  block of 1.75 M instructions run once cost 8-11x plain per gas with gas alone. At one unit
  per two octets, the worst program costs no more than about 3x plain per charged unit
  (bench/bench_isolation.py measures it; docs/benchmarks.md has the figures). A blob of at
  most 64 KiB (every example service, every test program) is free. The other attestors'
  refines and the service's accumulate load the same blob, which the program cache
  (pvm/cache.py, byte-budgeted) serves decoded, so they are not charged again;
- *transfers*: each transfer a service's accumulate makes (its `transfer` host call, 10 GP
  gas) is charged `TRANSFER_UNITS` more, after the run, when the package is applied (the
  count is known only then): the sender pays for the input it queues for another service
  and for the record the runtime keeps of it. The units are added to the service's gas
  usage of the hour of the apply and to what the scheduler keeps of the claim (a package
  may so end above its hourly budget; the next submission then waits for the next hour).
  A transfer costs about 0.1-0.15 us of CPU on the native core beyond its 10 gas, some 60
  gas of plain execution: 100 units keep 4,000 transfers within plain execution per
  charged unit (bench/bench_isolation.py).
"""

from __future__ import annotations

from collections.abc import Callable

from jamhost.domain.types import WorkPackage
from jamhost.engine.authorizer import names_authorizer
from jamhost.tenancy.erasure_gas import erasure_gas

#: Octets of code an invocation loads without charge.
FREE_CODE_OCTETS = 64 * 1024
#: Units charged per CODE_OCTETS_PER_UNITS octets of code beyond the free allowance.
CODE_UNITS = 1
CODE_OCTETS_PER_UNITS = 2

#: Units charged per transfer an accumulate makes, on top of its 10 GP gas.
TRANSFER_UNITS = 100

#: `code_size(service, code_hash)`: the octets of a preimage of `service` (metadata only,
#: never the blob), or None when it has none: nothing is loaded, nothing is charged.
CodeSize = Callable[[int, bytes], int | None]


def code_units(size: int | None) -> int:
    """The units of one invocation loading `size` octets of code (None: no code)."""
    if size is None or size <= FREE_CODE_OCTETS:
        return 0
    return -(-(size - FREE_CODE_OCTETS) * CODE_UNITS // CODE_OCTETS_PER_UNITS)


def package_code_units(package: WorkPackage, code_size: CodeSize) -> int:
    """Code-loading units of the package: each item's code, and the authorizer's when named
    (engine/authorizer.py names_authorizer)."""
    total = sum(code_units(code_size(item.service, item.code_hash)) for item in package.items)
    if names_authorizer(package):
        total += code_units(code_size(package.auth_code_host, package.auth_code_hash))
    return total


def package_units(package: WorkPackage, code_size: CodeSize,
                  encoded_size: int | None = None) -> int:
    """Every unit the package is charged beyond GP gas: erasure coding and code loading."""
    return erasure_gas(package, encoded_size) + package_code_units(package, code_size)


def transfer_units(count: int) -> int:
    """The units of `count` transfers made by one accumulate (charged after the run)."""
    return TRANSFER_UNITS * max(0, count)
