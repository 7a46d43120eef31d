"""The pool's liveness check on a real socket pair: idle, spoken to, hung up, and on a
descriptor above 1023 (where `select` would fail and every checkout would reconnect)."""

from __future__ import annotations

import os
import resource
import socket

from jamhost.store.sql.engine import _readable


def test_idle_spoken_and_hung_up() -> None:
    ours, server = socket.socketpair()
    try:
        assert _readable(ours.fileno()) is False
        server.send(b"E")  # what a terminating backend does before closing
        assert _readable(ours.fileno()) is True
    finally:
        ours.close()
        server.close()
    ours, server = socket.socketpair()
    try:
        server.close()
        assert _readable(ours.fileno()) is True
    finally:
        ours.close()


def test_descriptor_above_1023() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    ours, server = socket.socketpair()
    high = os.dup2(ours.fileno(), 2000)
    try:
        assert _readable(high) is False
        server.close()
        assert _readable(high) is True
    finally:
        os.close(high)
        ours.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
