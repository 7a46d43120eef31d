"""WorkExecResult, a digest's result `l ∈ B ∪ E` (GP 0.7.0 §11.1.4; codec O(...) in §C.2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Self

from jamhost.domain.codec import Decoder, encode_blob
from jamhost.domain.errors import CodecError
from jamhost.domain.fields import json_hex, to_hex, where
from jamhost.domain.record import Codable


class WorkExecKind(IntEnum):
    """The discriminator of O(l), GP 0.7.0 §C.2.

    The w3f ASN.1 schema of the vector snapshot lists bad-code as 4 and code-oversize as 5; it
    predates ⊚ (output oversize). We follow GP 0.7.0; the vectors only use ok and panic.
    """

    OK = 0
    """A blob: refine returned output."""
    OUT_OF_GAS = 1
    """∞: refine ran out of gas."""
    PANIC = 2
    """☇: refine panicked."""
    BAD_EXPORTS = 3
    """⊚: the number of exports differed from the item's export count."""
    OUTPUT_OVERSIZE = 4
    """⊝: the digest outputs together exceeded W_R."""
    BAD_CODE = 5
    """BAD: the service code was not available for lookup."""
    CODE_OVERSIZE = 6
    """BIG: the code was larger than W_C."""

    @property
    def json_name(self) -> str:
        """The key of the w3f JSON form, e.g. `out_of_gas`."""
        return self.name.lower()


_BY_JSON_NAME = {kind.json_name: kind for kind in WorkExecKind}


@dataclass(frozen=True, slots=True)
class WorkExecResult(Codable):
    """The output blob of refine, or the error that stopped it.

    Build one with `WorkExecResult.ok(output)` or `WorkExecResult.error(WorkExecKind.PANIC)`
    (or the shorthands `out_of_gas()`, `panic()`, ...). JSON: `{"ok": "0x.."}` or
    `{"panic": null}`.
    """

    kind: WorkExecKind
    """Which member of B ∪ E this is."""
    output: bytes = b""
    """The blob when `kind` is OK; always empty for an error."""

    def __post_init__(self) -> None:
        if isinstance(self.kind, bool) or not isinstance(self.kind, int):
            raise CodecError(f"kind: expected a WorkExecKind, got {type(self.kind).__name__}")
        try:
            object.__setattr__(self, "kind", WorkExecKind(self.kind))
        except ValueError:
            raise CodecError(f"kind: unknown work result kind {self.kind}") from None
        if isinstance(self.output, bytearray | memoryview):
            object.__setattr__(self, "output", bytes(self.output))
        if not isinstance(self.output, bytes):
            raise CodecError(f"output: expected bytes, got {type(self.output).__name__}")
        if self.kind is not WorkExecKind.OK and self.output:
            raise CodecError(f"output: a {self.kind.json_name} result carries no output")

    @classmethod
    def ok(cls, output: bytes) -> Self:
        return cls(WorkExecKind.OK, output)

    @classmethod
    def error(cls, kind: WorkExecKind) -> Self:
        if kind == WorkExecKind.OK:
            raise CodecError("kind: OK is not an error; use WorkExecResult.ok(output)")
        return cls(kind)

    @classmethod
    def out_of_gas(cls) -> Self:
        return cls(WorkExecKind.OUT_OF_GAS)

    @classmethod
    def panic(cls) -> Self:
        return cls(WorkExecKind.PANIC)

    @classmethod
    def bad_exports(cls) -> Self:
        return cls(WorkExecKind.BAD_EXPORTS)

    @classmethod
    def output_oversize(cls) -> Self:
        return cls(WorkExecKind.OUTPUT_OVERSIZE)

    @classmethod
    def bad_code(cls) -> Self:
        return cls(WorkExecKind.BAD_CODE)

    @classmethod
    def code_oversize(cls) -> Self:
        return cls(WorkExecKind.CODE_OVERSIZE)

    @property
    def is_ok(self) -> bool:
        return self.kind is WorkExecKind.OK

    def encode_into(self, out: bytearray) -> None:
        out.append(self.kind)
        if self.kind is WorkExecKind.OK:
            encode_blob(out, self.output)

    @classmethod
    def decode_from(cls, d: Decoder) -> Self:
        start = d.position
        tag = d.natural()
        if tag == WorkExecKind.OK:
            return cls(WorkExecKind.OK, d.blob())
        if tag >= len(WorkExecKind):
            raise CodecError(f"at byte {start}: unknown work result discriminator {tag}")
        return cls(WorkExecKind(tag))

    def to_json(self) -> dict[str, Any]:
        return {self.kind.json_name: to_hex(self.output) if self.is_ok else None}

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> Self:
        if not isinstance(obj, dict) or len(obj) != 1:
            raise CodecError(f"{where(path)}expected an object with exactly one key")
        ((name, value),) = obj.items()
        kind = _BY_JSON_NAME.get(name) if isinstance(name, str) else None
        if kind is None:
            raise CodecError(f"{where(path)}unknown result kind {str(name)[:40]!r}")
        if kind is WorkExecKind.OK:
            prefix = f"{path}." if path else ""
            return cls(kind, json_hex(value, prefix + "ok"))
        if value is not None:
            raise CodecError(f"{where(path)}{name} takes null")
        return cls(kind)
