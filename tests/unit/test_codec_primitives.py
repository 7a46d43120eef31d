"""GP appendix C primitives: expected bytes are written by hand from the GP formula.

E(x) for 2^(7l) <= x < 2^(7(l+1)) is [2^8 - 2^(8-l) + floor(x / 2^(8l))] ++ E_l(x mod 2^(8l)),
and [255] ++ E_8(x) from 2^56 on (GP 0.7.0 §C.1.1). The byte strings below were worked out on
paper from that definition, not produced by the code under test.
"""

from __future__ import annotations

import pytest

from jamhost.domain.codec import (
    Decoder,
    encode_blob,
    encode_fixed,
    encode_natural,
    encode_optional,
    encode_sequence,
)
from jamhost.domain.errors import CodecError, JamError
from jamhost.domain.hashing import blake2b_256

NATURALS = [
    (0, "00"),  # [0]
    (1, "01"),  # l = 0: [0 + 1]
    (127, "7f"),  # l = 0: [127]
    (128, "8080"),  # l = 1: [256-128 + 0] ++ E_1(128)
    (255, "80ff"),  # l = 1: [128 + 0] ++ E_1(255)
    (256, "8100"),  # l = 1: [128 + 1] ++ E_1(0)
    (2**14 - 1, "bfff"),  # l = 1: [128 + 63] ++ E_1(255)
    (2**14, "c00040"),  # l = 2: [256-64 + 0] ++ E_2(0x4000)
    (2**21 - 1, "dfffff"),  # l = 2: [192 + 31] ++ E_2(0xffff)
    (2**21, "e0000020"),  # l = 3: [256-32 + 0] ++ E_3(0x200000)
    (2**28, "f000000010"),  # l = 4: [256-16 + 0] ++ E_4(0x10000000)
    (2**29, "f000000020"),  # l = 4: [240 + 0] ++ E_4(0x20000000)
    (2**35, "f80000000008"),  # l = 5: [256-8 + 0] ++ E_5(2^35)
    (2**42, "fc000000000004"),  # l = 6: [256-4 + 0] ++ E_6(2^42)
    (2**49, "fe00000000000002"),  # l = 7: [256-2 + 0] ++ E_7(2^49)
    (2**56 - 1, "feffffffffffffff"),  # l = 7: [254 + 0] ++ E_7(2^56 - 1)
    (2**56, "ff0000000000000001"),  # otherwise: [255] ++ E_8(2^56)
    (2**64 - 1, "ffffffffffffffffff"),  # [255] ++ E_8(2^64 - 1)
]


@pytest.mark.parametrize(("value", "hex_bytes"), NATURALS)
def test_natural_encoding_matches_gp(value: int, hex_bytes: str) -> None:
    expected = bytes.fromhex(hex_bytes)
    out = bytearray()
    encode_natural(out, value)
    assert bytes(out) == expected
    d = Decoder(expected)
    assert d.natural() == value
    d.finish()


@pytest.mark.parametrize("value", [-1, 2**64])
def test_natural_out_of_range_cannot_be_encoded(value: int) -> None:
    with pytest.raises(CodecError):
        encode_natural(bytearray(), value)


@pytest.mark.parametrize(
    "hex_bytes",
    [
        "8005",  # 5 with a one-octet tail: canonical is 05
        "c00000",  # 0 in the l = 2 form
        "c0ff3f",  # 2^14 - 1 in the l = 2 form
        "ff0000000000000000",  # 0 in the E_8 form
        "ffffffffffffffff00",  # 2^56 - 1 in the E_8 form
    ],
)
def test_non_canonical_natural_is_rejected(hex_bytes: str) -> None:
    with pytest.raises(CodecError, match="non-canonical"):
        Decoder(bytes.fromhex(hex_bytes)).natural()


@pytest.mark.parametrize("hex_bytes", ["", "80", "c000", "e00000", "f0000000", "ff00000000000000"])
def test_truncated_natural_raises(hex_bytes: str) -> None:
    with pytest.raises(CodecError, match="truncated"):
        Decoder(bytes.fromhex(hex_bytes)).natural()


def test_natural_respects_max_value() -> None:
    with pytest.raises(CodecError, match="exceeds"):
        Decoder(bytes.fromhex("c00040")).natural(max_value=2**14 - 1)


@pytest.mark.parametrize(
    ("size", "value", "hex_bytes"),
    [
        (1, 0xAB, "ab"),
        (2, 0x0102, "0201"),
        (4, 0x12345678, "78563412"),
        (8, 2**64 - 1, "ffffffffffffffff"),
        (8, 42, "2a00000000000000"),
    ],
)
def test_fixed_width_little_endian(size: int, value: int, hex_bytes: str) -> None:
    out = bytearray()
    encode_fixed(out, value, size)
    assert out.hex() == hex_bytes
    assert Decoder(bytes.fromhex(hex_bytes)).fixed(size) == value


@pytest.mark.parametrize(("size", "value"), [(1, 256), (2, 2**16), (4, -1), (8, 2**64)])
def test_fixed_width_out_of_range(size: int, value: int) -> None:
    with pytest.raises(CodecError):
        encode_fixed(bytearray(), value, size)


def test_fixed_width_truncated() -> None:
    d = Decoder(b"\x01\x02\x03")
    with pytest.raises(CodecError, match="truncated"):
        d.u32()


def test_blob_and_sequence_are_length_prefixed() -> None:
    out = bytearray()
    encode_blob(out, b"\x01\x02\x03")
    encode_sequence(out, [1, 2], lambda o, x: encode_fixed(o, x, 2))
    assert out.hex() == "03010203" + "02" + "0100" + "0200"
    d = Decoder(out)
    assert d.blob() == b"\x01\x02\x03"
    assert d.sequence(lambda dd: dd.u16(), min_item_size=2) == (1, 2)
    d.finish()


def test_optional_discriminator() -> None:
    out = bytearray()
    encode_optional(out, None, encode_blob)
    encode_optional(out, b"\xaa", encode_blob)
    assert out.hex() == "00" + "01" + "01aa"
    d = Decoder(out)
    assert d.optional(Decoder.blob) is None
    assert d.optional(Decoder.blob) == b"\xaa"
    with pytest.raises(CodecError, match="discriminator"):
        Decoder(b"\x02").optional(Decoder.blob)


def test_huge_declared_length_fails_before_allocating() -> None:
    # A blob claiming 2^64 - 1 bytes, followed by three: must fail at once, not try to read.
    data = bytes.fromhex("ffffffffffffffffff") + b"abc"
    with pytest.raises(CodecError, match="declared length"):
        Decoder(data).blob()
    # A sequence of 32-byte items claiming 4 items with only 100 bytes left.
    with pytest.raises(CodecError, match="declared length"):
        Decoder(b"\x04" + bytes(100)).sequence(lambda d: d.raw(32), min_item_size=32)


def test_sequence_length_bounds() -> None:
    with pytest.raises(CodecError, match="outside"):
        Decoder(b"\x00").sequence(Decoder.u8, min_len=1)
    with pytest.raises(CodecError, match="outside"):
        Decoder(b"\x03\x01\x02\x03").sequence(Decoder.u8, max_len=2)


def test_trailing_bytes_raise() -> None:
    d = Decoder(b"\x05\x00")
    assert d.natural() == 5
    with pytest.raises(CodecError, match="trailing"):
        d.finish()


def test_decoder_accepts_memoryview_and_tracks_position() -> None:
    d = Decoder(memoryview(b"\x01\x02\x00\x00\x00"))
    assert d.u8() == 1
    assert d.position == 1
    assert d.remaining == 4
    assert d.u32() == 2
    d.finish()


def test_decoder_rejects_non_bytes_with_codec_error() -> None:
    with pytest.raises(CodecError):
        Decoder("not bytes")  # type: ignore[arg-type]


def test_codec_error_is_a_jam_error() -> None:
    assert issubclass(CodecError, JamError)


def test_blake2b_256_known_answer() -> None:
    # blake2b-256 of the empty string, from RFC 7693's reference implementation.
    expected = "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    assert blake2b_256(b"").hex() == expected
