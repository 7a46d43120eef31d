"""Replay the accumulations of block traces (davxy traces/*, GP 0.7.2, tiny) with jamhost's
engine and compare them with each block's post-state.

For each block whose post-state records an accumulation (packages in ξ'[E-1], or
accumulation statistics, which an always-accumulate service alone would produce): the
services are rebuilt from the pre-state key/values (`trace_state.account`); the reports that
became available are those of ρ whose core more than 2/3 of the validators assured in the
block (GP 0.7.2 eq. availableworkreports); `stf.accumulate_block` accumulates
them with η'_0 from the post-state (it depends on the block seal's VRF output, which is not
recomputed here); then the block's preimages are integrated (GP 0.7.2 §12.4). Compared with
the post-state: every service key (info, storage, preimages, requests), ξ'[E-1], ω', χ', θ'
and the accumulation statistics (N(s), G(s)) of π_S.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from jamhost.domain.hashing import blake2b_256
from jamhost.domain.types import WorkReport
from jamhost.engine.account import AccountState
from jamhost.engine.accumulate import integrate_provision
from jamhost.engine.conformance import trace_state as ts
from jamhost.engine.conformance.result import CaseResult
from jamhost.engine.conformance.state_keys import (
    chapter_key,
    encode_slots,
    preimage_key,
    request_key,
    service_info_key,
    service_of_key,
    storage_key,
)
from jamhost.engine.conformance.stf import AccumulationState, BlockAccumulation, accumulate_block
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.overlay import Overlay, _Deleted

Json = dict[str, Any]
K = TypeVar("K")
V = TypeVar("V")
#: Shown per difference kind before "... and N more".
_SHOWN = 3


def _b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def keyvals(raw: Json) -> dict[bytes, bytes]:
    return {_b(kv["key"]): _b(kv["value"]) for kv in raw["keyvals"]}


def available_reports(block: Json, state: Mapping[bytes, bytes],
                      constants: ProtocolConstants) -> list[WorkReport]:  # fmt: skip
    """W: the reports of ρ whose core got Σ a_f[c] > 2V/3 assurances, by core."""
    pending = ts.pending_reports(state, constants)
    counts = [0] * constants.core_count
    for assurance in block["extrinsic"]["assurances"]:
        bits = _b(assurance["bitfield"])
        for c in range(constants.core_count):
            counts[c] += (bits[c // 8] >> (c % 8)) & 1
    return [
        report
        for c, report in enumerate(pending)
        if report is not None and 3 * counts[c] > 2 * constants.validator_count
    ]


def total_changes(mapping: Mapping[K, V]) -> tuple[Mapping[K, V], dict[K, V | None]]:
    """(base, key -> new value or None) of a mapping under any number of `Overlay`s."""
    layers: list[dict[K, V | _Deleted]] = []
    while isinstance(mapping, Overlay):
        layers.append(mapping.changes)
        mapping = mapping.base
    merged: dict[K, V | _Deleted] = {}
    for changes in reversed(layers):
        merged.update(changes)
    out: dict[K, V | None] = {}
    for key, value in merged.items():
        if isinstance(value, _Deleted):
            if key in mapping:
                out[key] = None
        elif key not in mapping or mapping[key] != value:
            out[key] = value
    return mapping, out


def _as_is(value: bytes) -> bytes:
    return value


def _request_key(service: int, hash_length: tuple[bytes, int]) -> bytes:
    return request_key(service, *hash_length)


def service_keyvals(pre: Mapping[bytes, bytes], accounts: Mapping[int, AccountState],
                    removed: set[int]) -> dict[bytes, bytes]:  # fmt: skip
    """The service part of the post-state: the pre-state's service keys with the accounts'
    changes written through the GP state keys."""
    out = {k: v for k, v in pre.items() if service_of_key(k) is not None}
    for key in [k for k in out if service_of_key(k) in removed]:
        del out[key]
    for s, account in accounts.items():
        out[service_info_key(s)] = ts.encode_info(account)
        parts: tuple[tuple[Mapping[Any, Any], Callable[[Any], bytes],
                           Callable[[Any], bytes]], ...] = (
            (account.storage, partial(storage_key, s), _as_is),
            (account.preimages, partial(preimage_key, s), _as_is),
            (account.requests, partial(_request_key, s), encode_slots),
        )
        for mapping, to_key, encode in parts:
            _base, changes = total_changes(mapping)
            if isinstance(_base, dict):  # a service made in this block: all of it is new
                changes = {**dict(_base), **changes}
            for key, value in changes.items():
                if value is None:
                    out.pop(to_key(key), None)
                else:
                    out[to_key(key)] = encode(value)
    return out


def _key_diff(got: Mapping[bytes, bytes], expected: Mapping[bytes, bytes]) -> list[str]:
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    out = []
    for name, keys in (("differ", wrong), ("missing", missing), ("unexpected", extra)):
        if keys:
            shown = ", ".join("0x" + k.hex()[:16] for k in keys[:_SHOWN])
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            out.append(f"{len(keys)} service keys {name} ({shown}{more})")
    return out


def run_block(step: Json, name: str, constants: ProtocolConstants | None = None) -> CaseResult:
    """Replay one trace step's accumulation; skipped when the block accumulated nothing."""
    constants = constants or ProtocolConstants.tiny()
    start = time.perf_counter()
    result = CaseResult(name)
    pre, post = keyvals(step["pre_state"]), keyvals(step["post_state"])
    if not ts.accumulated(post, constants)[-1] and not ts.accumulate_statistics(post, constants):
        result.skipped = True  # no package and no always-accumulate service accumulated
        return result
    slot = step["block"]["header"]["slot"]
    services = sorted({s for k in pre if (s := service_of_key(k)) is not None})
    state = AccumulationState(
        slot=ts.timeslot(pre),
        entropy=ts.entropy(post)[0],
        ready_queue=ts.ready_queue(pre, constants),
        accumulated=ts.accumulated(pre, constants),
        privileges=ts.privileges(pre, constants),
        accounts={s: ts.account(pre, s) for s in services},
    )
    reports = available_reports(step["block"], pre, constants)
    block = accumulate_block(state, slot, reports, constants=constants, gp_version="0.7.2")
    accounts = dict(block.state.accounts)
    for item in step["block"]["extrinsic"]["preimages"]:  # GP 0.7.2 §12.4, after accumulation
        s, blob = item["requester"], _b(item["blob"])
        if s in accounts and accounts[s].requests.get((blake2b_256(blob), len(blob))) == ():
            accounts[s] = accounts[s].overlaid()
            integrate_provision(accounts[s], blob, slot)
    result.failures += _compare(block, accounts, set(services) - set(accounts), pre, post,
                                constants)  # fmt: skip
    result.seconds = time.perf_counter() - start
    return result


def _compare(block: BlockAccumulation, accounts: Mapping[int, AccountState], removed: set[int],
             pre: Mapping[bytes, bytes], post: Mapping[bytes, bytes],
             constants: ProtocolConstants) -> list[str]:  # fmt: skip
    failures = []
    if block.state.accumulated[-1] != ts.accumulated(post, constants)[-1]:
        failures.append("accumulated packages (ξ') differ")
    if ts.encode_ready_queue(block.state.ready_queue) != post[chapter_key(14)]:
        failures.append("ready queue (ω') differs")
    if ts.encode_privileges(block.state.privileges) != post[chapter_key(12)]:
        failures.append("privileges (χ') differ")
    if block.outputs != ts.outputs(post):
        failures.append(f"accumulation outputs (θ') {block.outputs} != {ts.outputs(post)}")
    got_stats = {s: (v.count, v.gas_used) for s, v in block.statistics.items()}
    want_stats = ts.accumulate_statistics(post, constants)
    if got_stats != want_stats:
        failures.append(f"accumulate statistics {got_stats} != {want_stats}")
    expected = {k: v for k, v in post.items() if service_of_key(k) is not None}
    failures += _key_diff(service_keyvals(pre, accounts, removed), expected)
    return failures


def trace_files(directory: Path) -> list[Path]:
    """The steps of a trace directory, in order (genesis.json is the start, not a step)."""
    return sorted(p for p in directory.glob("*.json") if p.is_file() and p.stem != "genesis")


def run_directory(directory: Path) -> Iterator[CaseResult]:
    for path in trace_files(directory):
        try:
            step = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            yield CaseResult(path.stem, [f"unreadable file ({exc})"])
            continue
        try:
            yield run_block(step, path.stem)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed step is a failed step
            yield CaseResult(path.stem, [f"unreadable step ({type(exc).__name__}: {exc})"])
