"""Use cases: preimages (blobs addressed by blake2b-256), scoped to a service.

A blob is stored once however many services hold it; each service holding it has its own
metadata row, and only those rows decide who may see it. Uploading a blob another tenant
already holds gives exactly the answer a new blob gives.
"""

from __future__ import annotations

from jamhost.app.runtime import Runtime
from jamhost.domain.hashing import blake2b_256
from jamhost.domain.model import PreimageMeta, ServiceRecord
from jamhost.domain.refusals import HashMismatch, NotFound
from jamhost.tenancy.principal import Principal


def authorize_upload(rt: Runtime, who: Principal,
                     service_id: int | None) -> ServiceRecord | None:
    """Decide before a single body byte is read; the service the blob will belong to."""
    view = rt.view(who)
    if service_id is None:
        view.unscoped_uploads()
        return None
    return view.service(service_id, "submit")


def put_preimage(rt: Runtime, who: Principal, hash_: bytes, data: bytes, media_type: str,
                 service_id: int | None) -> PreimageMeta:
    """Keep a blob for `service_id` (within its storage quota), or unscoped (operators, or
    anyone with authz disabled); written through the handle the caller's view gives, which
    is decided before the hash is checked."""
    view = rt.view(who)
    if service_id is None:
        uploads = view.unscoped_uploads()
        _check_hash(hash_, data)
        meta, _created = uploads.put_preimage(hash_, data, media_type)
        return meta
    writes = view.submitter(service_id)
    _check_hash(hash_, data)
    limit = writes.service.quota.resolve(rt.default_quota).storage_bytes
    meta, _created = writes.put_preimage(hash_, data, media_type, limit)
    return meta


def _check_hash(hash_: bytes, data: bytes) -> None:
    if blake2b_256(data) != hash_:
        raise HashMismatch("the body does not hash to the path")


def find_preimage(rt: Runtime, who: Principal, hash_: bytes) -> PreimageMeta:
    meta = rt.view(who).find_preimage(hash_)
    if meta is None:
        raise NotFound("no such preimage")
    return meta


def read_preimage(rt: Runtime, who: Principal, hash_: bytes) -> tuple[PreimageMeta, bytes]:
    found = rt.view(who).read_preimage(hash_)
    if found is None:  # metadata without a blob cannot happen; answer like a missing one
        raise NotFound("no such preimage")
    return found
