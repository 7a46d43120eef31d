"""Base classes of the GP types: one encode/decode/JSON contract for all of them.

`Codable` is the public contract (`encode`, `decode`, `decode_from`, `to_json`, `from_json`).
`Record` implements it for a product type from its `FIELDS` declaration, in GP order, and
validates every field on construction, so a constructed value can always be encoded.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from jamhost.domain.codec import Decoder
from jamhost.domain.errors import CodecError
from jamhost.domain.fields import Field, json_object, where


class Codable:
    """A GP type with a canonical encoding and the w3f JSON form."""

    __slots__ = ()

    def encode_into(self, out: bytearray) -> None:
        """Append the GP encoding of this value to `out`."""
        raise NotImplementedError

    @classmethod
    def decode_from(cls, d: Decoder) -> Self:
        """Decode one value at the decoder's position, leaving it after the value."""
        raise NotImplementedError

    def to_json(self) -> Any:
        """The w3f test-vector JSON form (dicts, lists, ints, `0x` hex strings, None)."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> Self:
        """Parse the w3f JSON form; any malformed input raises CodecError naming `path`."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """The GP encoding E(x) of this value."""
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode exactly one value from `data`; trailing bytes are an error."""
        d = Decoder(data)
        value = cls.decode_from(d)
        d.finish()
        return value


class Record(Codable):
    """A GP tuple type: subclasses are frozen dataclasses that declare `FIELDS` in GP order."""

    __slots__ = ()

    FIELDS: ClassVar[tuple[Field, ...]]

    def __post_init__(self) -> None:
        for f in self.FIELDS:
            object.__setattr__(self, f.name, f.codec.check(getattr(self, f.name), f.name))

    def encode_into(self, out: bytearray) -> None:
        for f in self.FIELDS:
            f.codec.encode(out, getattr(self, f.name))

    @classmethod
    def decode_from(cls, d: Decoder) -> Self:
        start = d.position
        values = {f.name: f.codec.decode(d) for f in cls.FIELDS}
        try:
            return cls(**values)
        except CodecError as exc:
            raise CodecError(f"at byte {start}: {cls.__name__}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {f.name: f.codec.to_json(getattr(self, f.name)) for f in self.FIELDS}

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> Self:
        names = tuple(f.name for f in cls.FIELDS)
        fields = json_object(obj, path, names)
        prefix = f"{path}." if path else ""
        values = {f.name: f.codec.from_json(fields[f.name], prefix + f.name) for f in cls.FIELDS}
        try:
            return cls(**values)
        except CodecError as exc:
            raise CodecError(f"{where(path)}{exc}") from None
