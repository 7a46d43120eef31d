"""GP 0.7.2 appendix D state keys (eq. C, the state-key constructor) and the service mappings
the engine reads through them.

A service's storage, preimages and requests live in the state under C(s, h): the service id's
four octets interleaved with H(h), where h is E_4(2^32 - 1) ++ k for storage key k,
E_4(2^32 - 2) ++ H(p) for a preimage and E_4(l) ++ H(p) for a request. Storage keys are hashed,
so a trace's state cannot be listed back into keys; `StateKeyed` gives the engine a mapping
keyed by the engine's own key (k, h or (h, l)) that reads the state through the same
construction. The engine only ever looks keys up, and keeps a_i and a_o itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Generic, TypeVar

from jamhost.domain.codec import Decoder, encode_fixed, encode_natural
from jamhost.domain.hashing import blake2b_256

K = TypeVar("K")
V = TypeVar("V")

STORAGE_TAG = (1 << 32) - 1
PREIMAGE_TAG = (1 << 32) - 2
SERVICE_INFO_CHAPTER = 255


def chapter_key(i: int) -> bytes:
    """C(i) = [i, 0, 0, ...]."""
    return bytes([i]) + bytes(30)


def service_info_key(service: int) -> bytes:
    """C(255, s) = [255, n0, 0, n1, 0, n2, 0, n3, 0, 0, ...] with n = E_4(s)."""
    n = service.to_bytes(4, "little")
    return bytes([SERVICE_INFO_CHAPTER, n[0], 0, n[1], 0, n[2], 0, n[3]]) + bytes(23)


def service_key(service: int, h: bytes) -> bytes:
    """C(s, h) = [n0, a0, n1, a1, n2, a2, n3, a3, a4, ..., a26] with n = E_4(s), a = H(h)."""
    n = service.to_bytes(4, "little")
    a = blake2b_256(h)
    return bytes([n[0], a[0], n[1], a[1], n[2], a[2], n[3], a[3]]) + a[4:27]


def storage_key(service: int, key: bytes) -> bytes:
    return service_key(service, STORAGE_TAG.to_bytes(4, "little") + key)


def preimage_key(service: int, h: bytes) -> bytes:
    return service_key(service, PREIMAGE_TAG.to_bytes(4, "little") + h)


def request_key(service: int, h: bytes, length: int) -> bytes:
    return service_key(service, length.to_bytes(4, "little") + h)


def service_of_key(key: bytes) -> int | None:
    """The service a state key belongs to (its info or one of its C(s, h) keys), else None."""
    if key[0] == SERVICE_INFO_CHAPTER and not any(key[2:8:2]) and not any(key[8:]):
        return int.from_bytes(key[1:8:2], "little")
    if not any(key[1:]):  # C(i): a chapter of the state, not a service's
        return None
    return int.from_bytes(key[0:8:2], "little")


def encode_slots(slots: tuple[int, ...]) -> bytes:
    """E(↕[E_4(x) | x <- t]): a request's timeslots as the state holds them."""
    out = bytearray()
    encode_natural(out, len(slots))
    for x in slots:
        encode_fixed(out, x, 4)
    return bytes(out)


def decode_slots(value: bytes) -> tuple[int, ...]:
    d = Decoder(value)
    count = d.natural()
    slots = tuple(d.u32() for _ in range(count))
    d.finish()
    return slots


class StateKeyed(MutableMapping[K, V], Generic[K, V]):
    """A read-only view of a state (key/values) as one service mapping: `to_state` maps the
    engine's key to its state key, `decode` the state's value to the engine's. Writes are not
    taken: the engine runs on an `Overlay` of this, whose changes the caller reads."""

    def __init__(
        self,
        state: Mapping[bytes, bytes],
        to_state: Callable[[K], bytes],
        decode: Callable[[bytes], V],
    ) -> None:
        self.state = state
        self.to_state = to_state
        self.decode = decode

    def __getitem__(self, key: K) -> V:
        return self.decode(self.state[self.to_state(key)])

    def __contains__(self, key: object) -> bool:
        # type-ignore reason: `in` takes any object; to_state maps the keys this view is asked for
        return self.to_state(key) in self.state  # type: ignore[arg-type]

    def __setitem__(self, key: K, value: V) -> None:
        raise TypeError("a state-keyed view is read-only; write to an Overlay of it")

    def __delitem__(self, key: K) -> None:
        raise TypeError("a state-keyed view is read-only; write to an Overlay of it")

    def __iter__(self) -> Iterator[K]:
        raise TypeError("state keys are hashes: a service's keys cannot be listed")

    def __len__(self) -> int:
        raise TypeError("state keys are hashes: a service's keys cannot be counted")
