"""Bounds on a request's head (request line and headers), enforced while it is parsed.

uvicorn's httptools protocol reads a head of any size and any number of headers: a 20 MiB
header from an anonymous client was read whole and answered 200. This protocol counts the
head's bytes as they arrive (so memory held for one head is the limit plus one read) and the
headers as they are parsed, and past either limit answers 431 Request Header Fields Too Large
with the SPEC error body, code `jam_bad_request`, then closes the connection. 431 rather than
400: it is the status RFC 6585 defines for exactly this, which clients and proxies know; the
code in the body is the SPEC one for bad input (SPEC §3 has no code of its own for it).

A malformed head gets the same JSON error body with 400 instead of uvicorn's plain text.
After refusing, the connection keeps reading and dropping what the client still sends, for
at most `LINGER_SECONDS`, and has already half-closed its side: closing at once with unread
bytes would make the kernel reset the connection, and the client would never read the answer.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 32 * 1024   # request line plus every header name and value
MAX_HEADERS = 100            # header lines in one request
LINGER_SECONDS = 5.0


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into a parser error."""


def _error(status: int, message: str) -> bytes:
    body = json.dumps({"error": message, "code": "jam_bad_request"}).encode()
    return b"".join([STATUS_LINE[status], b"content-type: application/json\r\n",
                     b"content-length: ", str(len(body)).encode(), b"\r\n",
                     b"connection: close\r\n\r\n", body])


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True    # between a message's end (or the connection's start) and
        self._head_bytes = 0      # its next head's end, bytes received count against the head
        self._head_headers = 0
        self._head_parsed = 0
        self._too_large = False
        self._refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_headers = 0
        self._head_parsed = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_open = True
        self._head_bytes = 0
        super().on_message_complete()

    def _count(self, size: int, headers: int) -> None:
        self._head_headers += headers
        self._head_parsed += size
        # The raw bytes counted in data_received bound a head that spans reads; this catches
        # one that arrives in a single read together with the rest of the request.
        if self._head_headers > MAX_HEADERS or self._head_parsed > MAX_HEAD_BYTES:
            self._too_large = True
            raise HeadTooLarge

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # drained, not parsed: see the module docstring
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        if not self._refused and self._head_open and self._head_bytes > MAX_HEAD_BYTES:
            self._too_large = True
            self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this on any parser error, including ours from `_count`."""
        if self._refused:
            return
        self._refused = True
        if self._too_large:
            self.logger.warning("request head over the limits refused (431)")
            answer = _error(431, f"request head over the limits ({MAX_HEAD_BYTES} bytes, "
                                 f"{MAX_HEADERS} headers)")
        else:
            answer = _error(400, "malformed HTTP request")
        self.transport.write(answer)
        try:
            self.transport.write_eof()
        except (NotImplementedError, RuntimeError, OSError):
            self.transport.close()
            return
        loop = getattr(self, "loop", None)
        if loop is not None:
            loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
