"""The command line of the example modules: `python -m jamhost.examples.NAME > NAME.pvm`.

`--help` prints the module's description; the blob is binary, so it is written only to a
file or a pipe, never to a terminal (where it would scramble the screen).
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def main(name: str, doc: str | None, build: Callable[[], bytes],
         argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(f"usage: python -m jamhost.examples.{name} > {name}.pvm\n")
        print((doc or "").strip())
        return 0
    if args:
        print(f"unknown argument {args[0]!r}; see --help", file=sys.stderr)
        return 2
    if sys.stdout.isatty():
        print(f"refusing to write the binary {name} blob to a terminal: redirect it, "
              f"e.g. python -m jamhost.examples.{name} > {name}.pvm", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(build())
    sys.stdout.flush()
    return 0
