"""Field codecs: how one kind of field is checked, encoded, decoded and written as JSON.

A GP type declares its fields as a tuple of `Field(name, codec)` right beside the dataclass
fields (the typeberry model), and `Record` derives encode/decode/JSON from that declaration, so
the byte order of a type is written down exactly once. The JSON form is the one of the w3f test
vectors: integers as JSON numbers, byte strings as `0x`-prefixed hex, sequences as lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from jamhost.domain.codec import Decoder, encode_fixed, encode_natural
from jamhost.domain.errors import CodecError

if TYPE_CHECKING:
    from jamhost.domain.record import Codable

T = TypeVar("T")
C = TypeVar("C", bound="Codable")

_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


def where(path: str) -> str:
    """Prefix for error messages: the JSON path or field name, if any."""
    return f"{path}: " if path else ""


def json_int(obj: object, path: str, bits: int) -> int:
    """An unsigned JSON integer below 2^bits (bool is not an integer here)."""
    if not isinstance(obj, int) or isinstance(obj, bool):
        raise CodecError(f"{where(path)}expected an integer, got {type(obj).__name__}")
    if not 0 <= obj < 1 << bits:
        raise CodecError(f"{where(path)}{obj} out of range 0..2^{bits}-1")
    return obj


def json_hex(obj: object, path: str, size: int | None = None) -> bytes:
    """A `0x`-prefixed hex string, optionally of exactly `size` bytes."""
    if not isinstance(obj, str) or _HEX.fullmatch(obj) is None:
        raise CodecError(f"{where(path)}expected 0x-prefixed hex with an even number of digits")
    data = bytes.fromhex(obj[2:])
    if size is not None and len(data) != size:
        raise CodecError(f"{where(path)}expected {size} bytes, got {len(data)}")
    return data


def to_hex(data: bytes) -> str:
    """Lowercase `0x` hex, the JSON form of every byte string."""
    return "0x" + data.hex()


def json_object(obj: object, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object with exactly `keys`: a missing or unknown key is an error, not a default."""
    if not isinstance(obj, dict):
        raise CodecError(f"{where(path)}expected an object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise CodecError(f"{where(path)}missing field(s) {', '.join(missing)}")
    unknown = [str(k) for k in obj if k not in keys]
    if unknown:
        # the expected names, not the sent ones: a client's text is never echoed
        raise CodecError(f"{where(path)}unknown field(s); expected {', '.join(keys)}")
    return obj


class FieldCodec(Protocol[T]):
    """What a `Record` needs to know about one field kind."""

    @property
    def min_size(self) -> int:
        """Fewest bytes one encoded value takes; bounds sequence lengths before allocating.
        Read-only: the codecs are frozen dataclasses (a field or a property)."""
        ...

    def check(self, value: object, path: str) -> T:
        """Validate a constructor argument (and normalise it, e.g. list to tuple)."""
        ...

    def encode(self, out: bytearray, value: T) -> None: ...

    def decode(self, d: Decoder) -> T: ...

    def to_json(self, value: T) -> object: ...

    def from_json(self, obj: object, path: str) -> T: ...


@dataclass(frozen=True, slots=True)
class FixedInt:
    """E_n: an unsigned integer in exactly `size` little-endian octets (GP §C.1.7)."""

    size: int

    @property
    def min_size(self) -> int:
        return self.size

    def check(self, value: object, path: str) -> int:
        return json_int(value, path, 8 * self.size)

    def encode(self, out: bytearray, value: int) -> None:
        encode_fixed(out, value, self.size)

    def decode(self, d: Decoder) -> int:
        return d.fixed(self.size)

    def to_json(self, value: int) -> object:
        return value

    def from_json(self, obj: object, path: str) -> int:
        return json_int(obj, path, 8 * self.size)


@dataclass(frozen=True, slots=True)
class Natural:
    """E: the general (variable-length) natural encoding, value below 2^bits (GP §C.1.1)."""

    bits: int
    min_size: int = 1

    def check(self, value: object, path: str) -> int:
        return json_int(value, path, self.bits)

    def encode(self, out: bytearray, value: int) -> None:
        encode_natural(out, value)

    def decode(self, d: Decoder) -> int:
        return d.natural((1 << self.bits) - 1)

    def to_json(self, value: int) -> object:
        return value

    def from_json(self, obj: object, path: str) -> int:
        return json_int(obj, path, self.bits)


def _check_bytes(value: object, path: str) -> bytes:
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise CodecError(f"{where(path)}expected bytes, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class FixedBytes:
    """A fixed-length octet string such as a hash: identity encoding, no length (GP §C.1.2)."""

    size: int

    @property
    def min_size(self) -> int:
        return self.size

    def check(self, value: object, path: str) -> bytes:
        data = _check_bytes(value, path)
        if len(data) != self.size:
            raise CodecError(f"{where(path)}expected {self.size} bytes, got {len(data)}")
        return data

    def encode(self, out: bytearray, value: bytes) -> None:
        out += value

    def decode(self, d: Decoder) -> bytes:
        return d.raw(self.size)

    def to_json(self, value: bytes) -> object:
        return to_hex(value)

    def from_json(self, obj: object, path: str) -> bytes:
        return json_hex(obj, path, self.size)


@dataclass(frozen=True, slots=True)
class Blob:
    """↕x: a variable-length octet string with its length prefix (GP §C.1.3)."""

    min_size: int = 1

    def check(self, value: object, path: str) -> bytes:
        return _check_bytes(value, path)

    def encode(self, out: bytearray, value: bytes) -> None:
        encode_natural(out, len(value))
        out += value

    def decode(self, d: Decoder) -> bytes:
        return d.blob()

    def to_json(self, value: bytes) -> object:
        return to_hex(value)

    def from_json(self, obj: object, path: str) -> bytes:
        return json_hex(obj, path)


@dataclass(frozen=True, slots=True)
class Nested(Generic[C]):
    """A field whose value is itself a GP type (a `Codable`)."""

    cls: type[C]
    min_size: int = 1

    def check(self, value: object, path: str) -> C:
        if not isinstance(value, self.cls):
            raise CodecError(f"{where(path)}expected {self.cls.__name__}")
        return value

    def encode(self, out: bytearray, value: C) -> None:
        value.encode_into(out)

    def decode(self, d: Decoder) -> C:
        return self.cls.decode_from(d)

    def to_json(self, value: C) -> object:
        return value.to_json()

    def from_json(self, obj: object, path: str) -> C:
        return self.cls.from_json(obj, path)


@dataclass(frozen=True, slots=True)
class SeqOf(Generic[T]):
    """↕[...]: a length-prefixed sequence (GP §C.1.2-3), held as a tuple.

    `max_len` is the bound the GP type itself puts on the sequence (e.g. 1..I work items).
    `sort_key`, when given, makes the sequence a GP set or dictionary, which the GP encodes in
    ascending key order (§C.1.5, §C.1.6): keys must be strictly ascending, so that one value has
    one encoding.
    """

    item: FieldCodec[T]
    min_len: int = 0
    max_len: int | None = None
    sort_key: Callable[[T], bytes] | None = None
    min_size: int = 1

    def check(self, value: object, path: str) -> tuple[T, ...]:
        if not isinstance(value, tuple | list):
            raise CodecError(f"{where(path)}expected a sequence, got {type(value).__name__}")
        items = tuple(self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value))
        self._check_bounds(items, path)
        return items

    def _check_bounds(self, items: tuple[T, ...], path: str) -> None:
        n = len(items)
        if n < self.min_len or (self.max_len is not None and n > self.max_len):
            bound = f"{self.min_len}..{self.max_len}" if self.max_len is not None else ""
            raise CodecError(f"{where(path)}length {n} outside {bound or f'>= {self.min_len}'}")
        if self.sort_key is not None:
            keys = [self.sort_key(v) for v in items]
            if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
                raise CodecError(f"{where(path)}keys must be strictly ascending (a GP set)")

    def encode(self, out: bytearray, value: tuple[T, ...]) -> None:
        encode_natural(out, len(value))
        for v in value:
            self.item.encode(out, v)

    def decode(self, d: Decoder) -> tuple[T, ...]:
        start = d.position
        items = d.sequence(
            self.item.decode,
            min_item_size=self.item.min_size,
            min_len=self.min_len,
            max_len=self.max_len,
        )
        try:
            self._check_bounds(items, "")
        except CodecError as exc:
            raise CodecError(f"at byte {start}: {exc}") from None
        return items

    def to_json(self, value: tuple[T, ...]) -> object:
        return [self.item.to_json(v) for v in value]

    def from_json(self, obj: object, path: str) -> tuple[T, ...]:
        if not isinstance(obj, list):
            raise CodecError(f"{where(path)}expected a list, got {type(obj).__name__}")
        items = tuple(self.item.from_json(v, f"{path}[{i}]") for i, v in enumerate(obj))
        self._check_bounds(items, path)
        return items


U8 = FixedInt(1)
U16 = FixedInt(2)
U32 = FixedInt(4)
U64 = FixedInt(8)
HASH = FixedBytes(32)
BLOB = Blob()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a GP type: its attribute name (also its w3f JSON key) and codec."""

    name: str
    codec: FieldCodec[Any]
