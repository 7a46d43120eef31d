"""Packages this process decoded at submit, kept for its own workers (`serve` with `workers`):
the worker that claims one takes it instead of decoding the stored body again. A package
submitted through another process (or pushed out of this small cache) is decoded from its
body as before; the id is the hash of that body, so what is taken is what was stored."""

from __future__ import annotations

import threading
from collections import OrderedDict

from jamhost.app.runtime import Runtime
from jamhost.domain.model import PackageRecord
from jamhost.domain.types.work_package import WorkPackage

#: At most this many packages, each of at most MAX_BODY octets encoded (4 MiB in all).
KEPT = 256
MAX_BODY = 16 * 1024

_LOCK = threading.Lock()


def _kept(rt: Runtime) -> OrderedDict[bytes, WorkPackage]:
    kept: OrderedDict[bytes, WorkPackage] = rt.extras.setdefault("decoded_packages",
                                                                 OrderedDict())
    return kept


def remember(rt: Runtime, record: PackageRecord, package: WorkPackage) -> None:
    """Keep the decoded form of a package just stored (small ones only)."""
    if record.size > MAX_BODY:
        return
    with _LOCK:
        kept = _kept(rt)
        kept[record.id] = package
        while len(kept) > KEPT:
            kept.popitem(last=False)


def decoded(rt: Runtime, record: PackageRecord) -> WorkPackage:
    """The claimed package as this process decoded it at submit, else from its body."""
    with _LOCK:
        package = _kept(rt).pop(record.id, None)
    return package if package is not None else WorkPackage.decode(record.body)
