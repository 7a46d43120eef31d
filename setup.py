"""The native PVM core (src/jamhost/pvm/_native.c) as an optional CPython extension.

Metadata lives in pyproject.toml; this file only declares the extension. It is built by
`pip install` (so `make run`/`make test`) with warnings as errors. Without a working C
compiler the build of the extension is skipped and jamhost runs the pure-Python engine
(`jamhost.pvm.get_engine` says so in one warning line).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"]
"""Keep in step with NATIVE_CFLAGS of the Makefile (the sanitizer build of the same file)."""


class OptionalBuildExt(build_ext):
    """Build the extension when a compiler is there; otherwise warn and go on without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "no native core"
            if os.environ.get("JAMHOST_NATIVE_REQUIRED"):
                raise
            print(f"warning: native PVM core not built ({exc}); the Python engine is used",
                  file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if os.environ.get("JAMHOST_NATIVE_REQUIRED"):
                raise
            print(f"warning: native PVM core not built ({exc}); the Python engine is used",
                  file=sys.stderr)


setup(
    ext_modules=[
        Extension(
            "jamhost.pvm._native",
            sources=["src/jamhost/pvm/_native.c"],
            depends=["src/jamhost/pvm/_fasthost.h"],
            extra_compile_args=CFLAGS,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
