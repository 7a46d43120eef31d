"""Attestation signatures over "$jam_guarantee" ++ report hash (GP 0.7.2 eq. guarantorsig)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from jamhost.engine import attest

REPORT_HASH = bytes(range(32))


def test_sign_and_verify() -> None:
    private, public = attest.new_keypair()
    assert len(private) == 32 and len(public) == 32
    assert attest.public_key(private) == public
    signature = attest.sign(private, REPORT_HASH)
    assert len(signature) == 64
    assert attest.verify(public, REPORT_HASH, signature)
    # the signed message is the GP context followed by the hash, checked independently
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"$jam_guarantee" + REPORT_HASH)


def test_signatures_are_deterministic_per_key() -> None:
    private, _ = attest.new_keypair()
    assert attest.sign(private, REPORT_HASH) == attest.sign(private, REPORT_HASH)


def test_rejects_wrong_hash_key_or_garbage() -> None:
    private, public = attest.new_keypair()
    _, other = attest.new_keypair()
    signature = attest.sign(private, REPORT_HASH)
    assert not attest.verify(public, bytes(32), signature)
    assert not attest.verify(other, REPORT_HASH, signature)
    assert not attest.verify(public, REPORT_HASH, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not attest.verify(b"short", REPORT_HASH, signature)
    assert not attest.verify(public, b"short", signature)
    assert not attest.verify(public, REPORT_HASH, b"")


def test_rfc8032_test_vector_key() -> None:
    # RFC 8032 §7.1 TEST 1: the public key of this secret key
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    expected = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert attest.public_key(secret).hex() == expected
