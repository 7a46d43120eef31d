"""What independence a package's attestors give (SPEC §4; docs/pipeline.md, "Attestors").

Refine is deterministic: a second run of the same engine in the same process on the same
inputs can never disagree with the first, so it only doubled the cost. What can disagree is
another implementation of the PVM: jamhost has two, the native core and the Python
interpreter (the reference the native core is checked against, tests/differential). So:

- the first attestor refines the package on the runtime's engine (`pvm_engine`);
- the second re-refines it on the other engine when the package is sampled (the same engine
  when only one is built), and otherwise signs the first attestor's report; attestors past
  the second sign the report the first one (or two) computed;
- a package whose first refine used g gas is sampled with probability
  min(1, attestor_recheck_gas / g): every package up to `attestor_recheck_gas` gas is
  re-refined, a heavier one in proportion, so the re-refines cost at most about
  `attestor_recheck_gas` gas per package on average whatever the mix (0: none). The draw is
  blake2b(the runtime's sampling key ++ the package hash): the same on every retry and
  replica, and not predictable by a tenant, who does not know the key;
- a re-refine whose report hash differs from the first is a dispute (SPEC §4): the package is
  `disputed`, nothing is applied, both hashes are kept in its `detail`.

Every attestation names the engine of the report it signs: the first refine's, which is the
report stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from jamhost.app.accumulation import note_dropped_logs
from jamhost.app.attestors import Attestor, attestors
from jamhost.app.lookup_cache import CachedLookup, own_preimages
from jamhost.app.runtime import Runtime
from jamhost.app.segments import import_lookup
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import ServiceRecord
from jamhost.domain.types.work_package import WorkPackage
from jamhost.engine import RefineOutcome
from jamhost.engine.authorizer import names_authorizer
from jamhost.observability import get_logger
from jamhost.pvm import get_engine, safepoint
from jamhost.pvm.engines import native_available
from jamhost.pvm.interface import PvmEngine
from jamhost.tenancy.view import TenantView

log = get_logger("jamhost.pipeline")

Refine = Callable[..., RefineOutcome]


@dataclass
class Attested:
    """One attestor's part: the outcome it signs (its own refine's, or the first one's) and
    whether it refined the package itself."""
    attestor: Attestor
    outcome: RefineOutcome
    report_hash: bytes
    refined: bool
    encoded: bytes
    """E(report) of `outcome`, which `report_hash` hashes (the stored report's body)."""


def recheck_engine(first: PvmEngine) -> PvmEngine:
    """The engine a sampled second attestor refines on: the one the first did not use."""
    if first.name == get_engine("python").name:
        return get_engine("native") if native_available() else first
    return get_engine("python")


def _sampling_key(rt: Runtime) -> bytes:
    key = rt.extras.get("attest_sampling_key")
    if key is None:
        key = bytes.fromhex(rt.store.get_or_create_meta("attest_sampling_key",
                                                        secrets.token_hex(32)))
        rt.extras["attest_sampling_key"] = key
    return key


def sampled(rt: Runtime, package_hash: bytes, gas_used: int) -> bool:
    """Whether the second attestor re-refines this package (see the module's rule)."""
    budget = rt.settings.attestor_recheck_gas
    if budget <= 0:
        return False
    if gas_used <= budget:
        return True
    draw = int.from_bytes(blake2b_256(_sampling_key(rt) + package_hash)[:8], "little")
    return draw * gas_used < budget << 64


def attest_runs(rt: Runtime, package: WorkPackage, svc: ServiceRecord, refine: Refine, *,
                encoded: bytes | None = None, own: CachedLookup | None = None) -> list[Attested]:
    """The first `attestation_threshold` attestors' parts for one package of `svc` (raises
    RefineInputError when the package cannot be refined). `encoded`: E(p) as stored; `own`:
    the package's reads of its service's preimages (lookup_cache.own_preimages), if the
    caller shares them with the package's accumulate."""
    view = rt.account_view(svc)  # the service's own account view (tenancy/view.py)
    service_id = svc.service_id
    # One read per blob for the whole package (every refine, every historical_lookup, and the
    # accumulate when the caller passes `own` on), and historical_lookup reads |v| and a
    # window of the blob, not all of it.
    own = own if own is not None else own_preimages(view, service_id)
    auth_code = authorizer_code(package, svc, view)
    # Imports resolve once per package among the owner's exports (app/segments.py).
    imports = import_lookup(rt, svc)

    def run(engine: PvmEngine) -> RefineOutcome:
        safepoint.reach()  # before each attestor's refine (app/preemption.py)
        outcome = refine(package, code_lookup=own, preimage_lookup=own,
                         max_log_bytes=rt.settings.max_log_bytes_per_invocation,
                         authorizer_code=auth_code, engine=engine, import_lookup=imports,
                         encoded=encoded)
        note_dropped_logs(service_id, "refine", outcome.logs_dropped)
        return outcome

    def attested(key: Attestor, outcome: RefineOutcome) -> Attested:
        encoded = outcome.report.encode()
        return Attested(key, outcome, blake2b_256(encoded), True, encoded)

    keys = attestors(rt)[: rt.settings.attestation_threshold]
    first = attested(keys[0], run(rt.pvm))
    runs = [first]
    if len(keys) > 1 and sampled(rt, first.outcome.report.package_spec.hash,
                                 first.outcome.gas_used):
        runs.append(attested(keys[1], run(recheck_engine(rt.pvm))))
    runs += [replace(first, attestor=key, refined=False) for key in keys[len(runs):]]
    return runs


def authorizer_code(package: WorkPackage, svc: ServiceRecord,
                    view: TenantView) -> bytes | None:
    """The code preimage of the package's authorizer, if the package names one its service
    may use (tenancy.authz, decided by the view); None otherwise, which refine reports as
    not authorized."""
    if not names_authorizer(package):
        return None
    return view.authorizer_code(svc, package.auth_code_host, package.auth_code_hash)
