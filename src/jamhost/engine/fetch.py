"""The `fetch` host call Ω_Y (GP 0.7.2 §B.6, id 1): what an invocation may read about itself.

`FetchSource` holds what the calling invocation exposes (GP passes `none` for the rest):
refine exposes the package, a zero entropy, the authorizer trace, the item index, imports and
extrinsics; accumulate exposes the entropy η'_0 and its accumulation inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from jamhost.domain.codec import encode_fixed, encode_natural
from jamhost.domain.types import WorkItem, WorkPackage
from jamhost.engine.constants import ProtocolConstants
from jamhost.engine.hostio import answer_blob
from jamhost.pvm.interface import PvmInstance, Status


def item_summary(item: WorkItem) -> bytes:
    """S(w) = E(E_4(s), c, E_8(g, a), E_2(e, |i|, |x|), E_4(|y|)) (GP 0.7.2 Ω_Y)."""
    out = bytearray()
    encode_fixed(out, item.service, 4)
    out += item.code_hash
    encode_fixed(out, item.refine_gas_limit, 8)
    encode_fixed(out, item.accumulate_gas_limit, 8)
    encode_fixed(out, item.export_count, 2)
    encode_fixed(out, len(item.import_segments), 2)
    encode_fixed(out, len(item.extrinsic), 2)
    encode_fixed(out, len(item.payload), 4)
    return bytes(out)


def _sequence(blobs: Sequence[bytes]) -> bytes:
    out = bytearray()
    encode_natural(out, len(blobs))
    for blob in blobs:
        out += blob
    return bytes(out)


@dataclass(slots=True)
class FetchSource:
    """The arguments p, n, r, i, ī, x̄, i (inputs) of Ω_Y; None where GP passes none."""

    constants: ProtocolConstants
    package: WorkPackage | None = None
    entropy: bytes | None = None
    auth_trace: bytes | None = None
    item_index: int | None = None
    imports: Sequence[Sequence[bytes]] | None = None
    extrinsics: Sequence[Sequence[bytes]] | None = None
    inputs: Sequence[bytes] | None = None
    """Accumulation inputs, each already encoded (selectors 14 and 15)."""
    transfers: Sequence[bytes] | None = None
    """GP 0.7.0 only: on-transfer's transfers (selectors 16 and 17)."""
    _built: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)
    """Values encoded for this invocation, by (selector, index): fetch costs 10 gas whatever
    the size, so a value (the whole package, up to 13 MB) is encoded once, not per call."""

    fast_key_args: ClassVar[bytes] = bytes(
        3 if s in (3, 5) else 1 if s in (4, 6, 12, 13, 15, 17) else 0 for s in range(32)
    )
    """Per selector 0..31, which of ω11 (bit 0) and ω12 (bit 1) `value` depends on: the key
    under which an engine keeps a fetched value (hostio.Dispatch); other selectors, none."""

    _ENCODED = frozenset((0, 7, 10, 11, 12, 14, 16))
    """Selectors whose value is encoded on demand (the others are slices of held blobs)."""

    def value(self, selector: int, a: int, b: int) -> bytes | None:
        """v of Ω_Y for ω10 = selector, ω11 = a, ω12 = b (encoded values built once)."""
        if selector not in self._ENCODED:
            return self._value(selector, a, b)
        key = (selector, a if selector == 12 else 0)
        value = self._built.get(key)
        if value is None:
            value = self._value(selector, a, b)
            if value is not None:  # at most one entry per selector (per item for 12)
                self._built[key] = value
        return value

    def _value(self, selector: int, a: int, b: int) -> bytes | None:  # noqa: C901, PLR0911, PLR0912
        """v of Ω_Y for ω10 = selector, ω11 = a, ω12 = b."""
        p = self.package
        if selector == 0:
            return self.constants.encode()
        if selector == 1:
            return self.entropy
        if selector == 2:
            return self.auth_trace
        if selector in (3, 5):
            groups = self.extrinsics if selector == 3 else self.imports
            if groups is not None and a < len(groups) and b < len(groups[a]):
                return bytes(groups[a][b])
            return None
        if selector in (4, 6):
            groups = self.extrinsics if selector == 4 else self.imports
            i = self.item_index
            if groups is not None and i is not None and i < len(groups) and a < len(groups[i]):
                return bytes(groups[i][a])
            return None
        if p is not None:
            if selector == 7:
                return p.encode()
            if selector == 8:
                return p.authorizer_config
            if selector == 9:
                return p.authorization
            if selector == 10:
                return p.context.encode()
            if selector == 11:
                return _sequence([item_summary(w) for w in p.items])
            if selector == 12:
                return item_summary(p.items[a]) if a < len(p.items) else None
            if selector == 13:
                return p.items[a].payload if a < len(p.items) else None
        for base, seq in ((14, self.inputs), (16, self.transfers)):
            if seq is None:
                continue
            if selector == base:
                return _sequence(seq)
            if selector == base + 1:
                return seq[a] if a < len(seq) else None
        return None

    def __call__(self, vm: PvmInstance) -> Status | None:
        """Ω_Y: ω7 = output address, ω8 = offset, ω9 = length, ω10..12 = what to fetch."""
        value = self.value(vm.get_register(10), vm.get_register(11), vm.get_register(12))
        answer_blob(vm, value, vm.get_register(7), vm.get_register(8), vm.get_register(9))
        return None
