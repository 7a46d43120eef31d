"""The engine: refine and accumulate invocations on the PVM, host calls, attestation.

    from jamhost.engine import refine_package, accumulate, AccountState

`refine_package` (GP 0.7.2 §14.4, Ψ_R) turns a work package into a work report;
`accumulate` (Ψ_A) applies one service's digests to its account;
`jamhost.engine.conformance.stf` runs the GP accumulation state transition over many reports
(the conformance runs); `jamhost.engine.attest` signs and checks report hashes. See
docs/engine.md.
"""

from jamhost.engine.account import AccountState, footprint, threshold_balance
from jamhost.engine.accumulate import (
    AccumulateOutcome,
    CreatedService,
    accumulate,
    accumulate_gas,
    integrate_provision,
)
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.operands import AccumulateOperand, DeferredTransfer
from jamhost.engine.privileges import Privileges
from jamhost.engine.refine import (
    ItemRefinement,
    RefineInputError,
    RefineOutcome,
    authorizer_hash,
    refine_package,
)

__all__ = [
    "AccountState",
    "AccumulateOperand",
    "AccumulateOutcome",
    "CreatedService",
    "DeferredTransfer",
    "ItemRefinement",
    "Privileges",
    "ProtocolConstants",
    "RefineInputError",
    "RefineOutcome",
    "accumulate",
    "accumulate_gas",
    "authorizer_hash",
    "footprint",
    "integrate_provision",
    "refine_package",
    "threshold_balance",
]
