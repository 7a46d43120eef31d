"""List cursors: the one codec every list endpoint uses.

A cursor is the store's position (a global sequence number, a service id, a storage key)
sealed with AES-256-GCM, so it reveals nothing: not the position, so a tenant cannot read off
how many packages other tenants submitted between two of its pages, and not even whether two
cursors name the same position (each seal takes a fresh nonce). The associated data binds a
cursor to the listing it came from: the route, the caller's token and the filters. A cursor
presented to another listing, by another caller, with other filters, or altered in any byte,
fails authentication and is answered 400 `jam_bad_request`, exactly like garbage.

The key is derived from the server's token HMAC key, so every replica of one deployment (same
`token_hmac_key`, or the same store's generated one) accepts the cursors of the others, and a
cursor outlives a restart.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request

from jamhost.domain.refusals import BadRequest

NONCE = 12
# What the token hasher is asked to MAC to make the cursor key: a NUL cannot appear in a token
# taken from an Authorization header, so no token hashes to the cursor key.
KEY_LABEL = "\0jamhost list cursor key v1"
MAX_CURSOR_CHARS = 2048  # a storage key is at most a few hundred bytes; nothing longer is ours


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key[:32])

    def __repr__(self) -> str:  # never print the key
        return "CursorCodec(<redacted>)"

    def seal(self, position: object, scope: bytes) -> str:
        if isinstance(position, bytes):
            plain = b"k" + position
        else:
            # type-ignore reason: a position not a key (bytes) is a seq (int); Page says object
            plain = b"i" + int(position).to_bytes(8, "big")  # type: ignore[call-overload]
        nonce = os.urandom(NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plain, scope)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, text: str, scope: bytes, kind: type) -> Any:
        try:
            if len(text) > MAX_CURSOR_CHARS:
                raise ValueError
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if len(raw) <= NONCE:
                raise ValueError
            plain = self._aead.decrypt(raw[:NONCE], raw[NONCE:], scope)
        except (ValueError, InvalidTag, TypeError):
            raise BadRequest("cursor is not valid for this listing") from None
        tag, body = plain[:1], plain[1:]
        if kind is bytes and tag == b"k":
            return body
        if kind is int and tag == b"i" and len(body) == 8:
            return int.from_bytes(body, "big")
        raise BadRequest("cursor is not valid for this listing")


def codec_for(request: Request) -> CursorCodec:
    state = request.app.state
    codec: CursorCodec | None = getattr(state, "cursors", None)
    if codec is None:
        codec = CursorCodec(state.runtime.hasher.hash(KEY_LABEL))
        state.cursors = codec
    return codec


def _scope(request: Request, filters: dict[str, object]) -> bytes:
    """The listing a cursor belongs to: route template, caller, filters (as the route parsed
    them, so `service_id=07` and `service_id=7` are one listing)."""
    route = request.scope.get("route")
    who = getattr(request.state, "principal", None)
    caller = who.token_hash.hex() if who is not None else "-"
    parts = [getattr(route, "path", request.url.path), caller]
    parts += [f"{k}={'' if v is None else (v.hex() if isinstance(v, bytes) else v)}"
              for k, v in sorted(filters.items())]
    return "\n".join(parts).encode("utf-8", "surrogatepass")


def decode(request: Request, text: str | None, kind: type, **filters: object) -> Any:
    """The position a client's `cursor` parameter names, or None for the first page."""
    if not text:
        return None
    return codec_for(request).open(text, _scope(request, filters), kind)


def page(request: Request, items: list[Any], next_position: object | None,
         **filters: object) -> dict[str, Any]:
    """A page of a listing, with the sealed cursor of the next page (or null: no more)."""
    cursor = (None if next_position is None
              else codec_for(request).seal(next_position, _scope(request, filters)))
    return {"items": items, "next_cursor": cursor}
