"""Request bodies read with a size cap while streaming: an oversized body is refused as soon
as it passes the cap (or at once from Content-Length), never buffered whole nor stored."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from jamhost.domain.refusals import BadRequest, TooLarge, UnsupportedMediaType


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def declared_length(request: Request, cap: int, what: str) -> None:
    header = request.headers.get("content-length")
    if header is not None:
        try:
            n = int(header)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if n > cap:
            raise TooLarge(f"{what} is larger than {cap} bytes")


async def read_capped(request: Request, cap: int, what: str = "body") -> bytes:
    declared_length(request, cap, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"{what} is larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, cap: int = 1 << 20) -> Any:
    kind = media_type(request)
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType("this endpoint takes application/json")
    return parse_json(await read_capped(request, cap))


def parse_json(raw: bytes) -> Any:
    """The one JSON decoder of request bodies. Deep nesting (`[[[[...`) makes the decoder
    raise RecursionError, which is the client's fault like any other bad byte: 400."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None


def json_object(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadRequest("the body must be a JSON object")
    return obj
