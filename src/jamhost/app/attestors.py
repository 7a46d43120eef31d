"""The runtime's attestor keys: `attestors` ed25519 keys, generated once and kept in the store
(so every replica and worker signs with the same keys)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jamhost.app.runtime import Runtime


@dataclass(frozen=True)
class Attestor:
    index: int
    private_key: bytes
    public_key: bytes

    def __repr__(self) -> str:  # never print the private key
        return f"Attestor({self.index}, public=0x{self.public_key.hex()})"


def attestors(rt: Runtime) -> list[Attestor]:
    cached = rt.extras.get("attestors")
    if cached is not None:
        return cached
    keys = []
    for i in range(rt.settings.attestors):
        fresh = Ed25519PrivateKey.generate().private_bytes_raw().hex()
        private = bytes.fromhex(rt.store.get_or_create_meta(f"attestor_key_{i}", fresh))
        public = Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
        keys.append(Attestor(i, private, public))
    rt.extras["attestors"] = keys
    return keys
