"""What the erasure coding of a package costs its account, in jamhost's own quota gas.

A report's erasure root (engine/erasure.py, GP 0.7.2 §14.4) codes the package's bundle and
its exported segments to 1023 chunks each and hashes every validator's chunks. GP gas does
not pay for that (an `export` costs 10 gas, and the conformance vectors fix GP gas), so
jamhost charges it on top, as *erasure units* that count like gas in the service's hourly
budget (`gas_per_hour`) and in the fair scheduler's claim cost (tenancy/fairness.py):

    units = GAS_PER_EXPORT · Σ export_count + GAS_PER_BUNDLE_PIECE · (pieces − 1)
    pieces = ⌈bundle / W_E⌉, bundle = |E(p)| + Σ extrinsic lengths + IMPORT_OCTETS · imports

The rates are set so that the CPU the coding costs per unit is no more than what plain
execution costs per gas on the native PVM core (bench/bench_refine.py measures both in one
run; docs/benchmarks.md has the figures). The first piece is free: the root over the 1023
validators of a one-piece bundle without exports is the fixed cost of every report, paid
like the rest of a package's handling (rate limits, pending caps), and charging it would
make every package cost more than it declares. Everything is declared in the package, so the
charge is known at submission and is the same number when the package finishes (the
scheduler's refund gives back unused refine gas only, never these units).
"""

from __future__ import annotations

from jamhost.domain.types import WorkPackage
from jamhost.engine.constants import SEGMENT_SIZE

#: Erasure units per exported segment (its 6 pieces, its share of a paged-proof page, and its
#: chunk in each of the 1023 validators' Merkle trees).
GAS_PER_EXPORT = 1_000_000
#: Erasure units per bundle piece of W_E = 684 octets after the first.
GAS_PER_BUNDLE_PIECE = 25_000
#: Bundle octets counted per imported segment: W_G and a justification of at most 12 hashes
#: (an export set holds at most W_X = 3072 < 2^12 segments) with its length prefix.
IMPORT_OCTETS = SEGMENT_SIZE + 1 + 32 * 12
PIECE_OCTETS = 684  # W_E


def bundle_octets(package: WorkPackage, encoded_size: int | None = None) -> int:
    """An upper bound on |b| = |E(p, x̄, ī, j̄)| from what the package declares
    (`encoded_size`: |E(p)| when the caller has it)."""
    if encoded_size is None:
        encoded_size = len(package.encode())
    extrinsics = sum(x.len for item in package.items for x in item.extrinsic)
    imports = sum(len(item.import_segments) for item in package.items)
    return encoded_size + extrinsics + IMPORT_OCTETS * imports


def erasure_gas(package: WorkPackage, encoded_size: int | None = None) -> int:
    """The erasure units the package is charged (module docstring has the rule)."""
    pieces = max(1, -(-bundle_octets(package, encoded_size) // PIECE_OCTETS))
    exports = sum(item.export_count for item in package.items)
    return GAS_PER_EXPORT * exports + GAS_PER_BUNDLE_PIECE * (pieces - 1)
