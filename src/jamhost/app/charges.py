"""The units a package is charged beyond GP gas (tenancy/tariff.py), with blob sizes from
the store's metadata (never the blobs), read through the account view of the package's
service (tenancy/view.py): its own code, its account's authorizers, the runtime-wide ones."""

from __future__ import annotations

from jamhost.domain.types.work_package import WorkPackage
from jamhost.tenancy.tariff import package_units
from jamhost.tenancy.view import TenantView


def units(view: TenantView, package: WorkPackage, encoded_size: int | None = None) -> int:
    """tenancy/tariff.py's `package_units` of the package against the store."""
    return package_units(package, view.code_size, encoded_size)
