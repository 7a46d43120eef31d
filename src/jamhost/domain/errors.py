"""Typed domain errors.

Every error the domain raises derives from `JamError`, so that the layers above can map it to
an HTTP status or an exit code in one table instead of catching builtin exceptions.
"""

from __future__ import annotations


class JamError(Exception):
    """Base of all jamhost domain errors."""


class CodecError(JamError):
    """Bytes or JSON that are not a valid GP encoding of the requested type.

    The codec raises this, and only this, for any untrusted input: truncation, trailing bytes,
    non-canonical or out-of-range numbers, unknown discriminators, malformed JSON shapes.
    """
