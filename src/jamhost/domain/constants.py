"""GP constants that bound the types of this package (GP 0.7.0, Definitions: Constants).

None of them differ between the tiny and full parameter sets: the codec vectors of both are
byte-identical for these types. The core count C does differ (2 vs 341) but the codec does not
bound a report's core index by it (the tiny `work_report` vector has core index 3): checking
that a core exists is the job of report validation, not of serialization.
"""

from __future__ import annotations

#: I: the most work items in a package (and digests in a report), GP 0.7.0 §14.3, §11.1.1.
MAX_WORK_ITEMS = 16

#: Bit 15 of an import index marks `tree_root` as a work-package hash (h⊞), GP §C.2 I(...).
IMPORT_PACKAGE_HASH_FLAG = 1 << 15
