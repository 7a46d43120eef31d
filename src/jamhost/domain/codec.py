"""GP serialization primitives (GP 0.7.0 appendix C, §C.1).

Encoding functions append to a `bytearray`, so a composite type writes itself in one pass.
`Decoder` walks a byte string and raises `CodecError` for every malformed input: it is fed
untrusted bytes from the HTTP API, so it must never raise anything else, never allocate more
than the input could describe, and accept only canonical encodings, so that for every accepted
input `decode(b).encode() == b` (a package id is the hash of its bytes; two encodings of one
package would give it two ids).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from jamhost.domain.errors import CodecError

T = TypeVar("T")

#: Largest value of the general natural encoding: GP encodes N_{2^64}.
NATURAL_MAX = (1 << 64) - 1


# --- encoding ---------------------------------------------------------------------------------


def encode_natural(out: bytearray, x: int) -> None:
    """Append the general natural encoding E(x) (GP 0.7.0 §C.1.1).

    E(0) = [0]; for l in 0..7 with 2^(7l) <= x < 2^(7(l+1)):
    [2^8 - 2^(8-l) + floor(x / 2^(8l))] ++ E_l(x mod 2^(8l)); otherwise [255] ++ E_8(x).
    """
    if not 0 <= x <= NATURAL_MAX:
        raise CodecError(f"natural {x} out of range 0..2^64-1")
    for length in range(8):
        if x < 1 << (7 * (length + 1)):
            head = 256 - (1 << (8 - length)) + (x >> (8 * length))
            out.append(head)
            out += (x & ((1 << (8 * length)) - 1)).to_bytes(length, "little")
            return
    out.append(0xFF)
    out += x.to_bytes(8, "little")


def encode_fixed(out: bytearray, x: int, size: int) -> None:
    """Append E_size(x): `size` octets, little-endian (GP 0.7.0 §C.1.7)."""
    if not 0 <= x < 1 << (8 * size):
        raise CodecError(f"{x} does not fit in E_{size}")
    out += x.to_bytes(size, "little")


def encode_blob(out: bytearray, data: bytes) -> None:
    """Append a length-prefixed blob, ↕x = E(|x|) ++ x (GP 0.7.0 §C.1.3)."""
    encode_natural(out, len(data))
    out += data


def encode_sequence(
    out: bytearray, items: Sequence[T], encode_item: Callable[[bytearray, T], None]
) -> None:
    """Append a length-prefixed sequence ↕[i0, i1, ...] (GP 0.7.0 §C.1.2, §C.1.3)."""
    encode_natural(out, len(items))
    for item in items:
        encode_item(out, item)


def encode_optional(
    out: bytearray, value: T | None, encode_value: Callable[[bytearray, T], None]
) -> None:
    """Append ¿x: 0 for none, else 1 ++ E(x) (GP 0.7.0 §C.1.3)."""
    if value is None:
        out.append(0)
    else:
        out.append(1)
        encode_value(out, value)


# --- decoding ---------------------------------------------------------------------------------


class Decoder:
    """A cursor over bytes that decodes GP primitives and reports errors with the offset."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._data = memoryview(data).cast("B")
        except (TypeError, ValueError) as exc:
            raise CodecError(f"cannot decode from {type(data).__name__}") from exc
        self._pos = 0

    @property
    def position(self) -> int:
        """Offset of the next unread byte."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Number of bytes not yet read."""
        return len(self._data) - self._pos

    def fail(self, message: str) -> CodecError:
        """Build a CodecError that names the current offset."""
        return CodecError(f"at byte {self._pos}: {message}")

    def finish(self) -> None:
        """Require that every byte was consumed: a value has exactly one encoding."""
        if self.remaining:
            raise self.fail(f"{self.remaining} trailing byte(s)")

    def raw(self, size: int) -> bytes:
        """Read exactly `size` raw bytes (a fixed-length term such as a hash)."""
        if size < 0 or size > self.remaining:
            raise self.fail(f"truncated: need {size} byte(s), {self.remaining} left")
        start = self._pos
        self._pos += size
        return bytes(self._data[start : self._pos])

    def fixed(self, size: int) -> int:
        """Read E_size^-1: a little-endian unsigned integer of `size` octets."""
        return int.from_bytes(self.raw(size), "little")

    def u8(self) -> int:
        return self.fixed(1)

    def u16(self) -> int:
        return self.fixed(2)

    def u32(self) -> int:
        return self.fixed(4)

    def u64(self) -> int:
        return self.fixed(8)

    def natural(self, max_value: int = NATURAL_MAX) -> int:
        """Read the general natural encoding (GP 0.7.0 §C.1.1), canonical form only."""
        start = self._pos
        head = self.fixed(1)
        length = 8 - (~head & 0xFF).bit_length()  # number of leading one bits of `head`
        if length == 8:
            value = self.fixed(8)
            minimum = 1 << 56
        else:
            high = head & ((1 << (7 - length)) - 1)
            value = (high << (8 * length)) | self.fixed(length)
            minimum = 0 if length == 0 else 1 << (7 * length)
        if value < minimum:
            self._pos = start
            raise self.fail(f"non-canonical natural encoding of {value}")
        if value > max_value:
            self._pos = start
            raise self.fail(f"value {value} exceeds {max_value}")
        return value

    def length(self, min_item_size: int = 1) -> int:
        """Read a length prefix and check the rest of the input could hold that many items.

        The check comes before any allocation, so a forged huge length costs nothing.
        """
        start = self._pos
        count = self.natural()
        if count * max(min_item_size, 0) > self.remaining:
            self._pos = start
            raise self.fail(f"declared length {count} exceeds the {self.remaining} bytes left")
        return count

    def blob(self) -> bytes:
        """Read a length-prefixed blob ↕x."""
        return self.raw(self.length())

    def sequence(
        self,
        decode_item: Callable[[Decoder], T],
        *,
        min_item_size: int = 1,
        min_len: int = 0,
        max_len: int | None = None,
    ) -> tuple[T, ...]:
        """Read a length-prefixed sequence, with the type's bounds on its length."""
        start = self._pos
        count = self.length(min_item_size)
        if count < min_len or (max_len is not None and count > max_len):
            self._pos = start
            bound = f"{min_len}..{max_len}" if max_len is not None else f">= {min_len}"
            raise self.fail(f"sequence length {count} outside {bound}")
        return tuple(decode_item(self) for _ in range(count))

    def optional(self, decode_value: Callable[[Decoder], T]) -> T | None:
        """Read ¿x: discriminator 0 (none) or 1 followed by the value."""
        flag = self.u8()
        if flag == 0:
            return None
        if flag == 1:
            return decode_value(self)
        self._pos -= 1
        raise self.fail(f"bad optional discriminator {flag}")
