"""The per-service receipt chain: tamper evidence for everything applied to a service.

    new_root = blake2b_256(b"jamhost/receipt/v1" ++ prev_root ++ E_8(seq) ++ E_1(tag) ++ hash)

with E_8 the 8-byte little-endian encoding (GP §C fixed-width), `tag` 0 for a `package`
entry (hash = package id), 1 for a `report` entry (hash = report hash) and 2 for an `inputs`
entry (an accumulation of queued transfers alone; hash = blake2b_256("jamhost/inputs" ++ the
E_8 ids of the transfers it consumed), `seq` counting from
1, and the root of an empty chain 32 zero bytes. Anyone holding the receipts can recompute the
chain with blake2b alone (`jamhost receipts verify`, docs/engine.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from jamhost.domain.hashing import blake2b_256

DOMAIN = b"jamhost/receipt/v1"
EMPTY_ROOT = bytes(32)
ENTRY_TAGS = {"package": 0, "report": 1, "inputs": 2}

#: (entry type, hash) of a receipt to append: ("package", id), ("report", hash), ("inputs", h)
Entry = tuple[str, bytes]


def package_entries(package_id: bytes, report_hash: bytes | None) -> tuple[Entry, ...]:
    """What an applied package appends to its service's chain: its `package` entry, then its
    `report` entry when it has a report (PackageOutcome.receipt_entries carries them)."""
    if report_hash is None:
        return (("package", package_id),)
    return ("package", package_id), ("report", report_hash)


def inputs_entries(transfer_ids: Iterable[int]) -> tuple[Entry, ...]:
    """What an accumulation of queued transfers alone appends: one `inputs` entry whose
    hash is blake2b_256("jamhost/inputs" ++ the E_8 ids of the transfers it consumed)."""
    return (("inputs", blake2b_256(b"jamhost/inputs" + b"".join(
        i.to_bytes(8, "little") for i in transfer_ids))),)


def chain_root(prev_root: bytes, seq: int, entry_type: str, hash_: bytes) -> bytes:
    if len(prev_root) != 32 or len(hash_) != 32:
        raise ValueError("roots and hashes are 32 bytes")
    return blake2b_256(DOMAIN + prev_root + seq.to_bytes(8, "little")
                       + bytes([ENTRY_TAGS[entry_type]]) + hash_)


def verify_chain(entries: Iterable[tuple[int, bytes, bytes, str, bytes]]) -> tuple[bool, str]:
    """Check (seq, prev_root, new_root, entry_type, hash) entries in order from seq 1."""
    root, expected_seq = EMPTY_ROOT, 1
    for seq, prev_root, new_root, entry_type, hash_ in entries:
        if seq != expected_seq:
            return False, f"seq {seq}: expected {expected_seq}"
        if prev_root != root:
            return False, f"seq {seq}: prev_root does not continue the chain"
        if entry_type not in ENTRY_TAGS:
            return False, f"seq {seq}: unknown entry type {entry_type!r}"
        if chain_root(prev_root, seq, entry_type, hash_) != new_root:
            return False, f"seq {seq}: new_root does not match"
        root, expected_seq = new_root, seq + 1
    return True, "0x" + root.hex()
