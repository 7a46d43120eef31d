"""The units a package is charged beyond GP gas (tenancy/tariff.py), with blob sizes from
the store's metadata (never the blobs), read through the account view of the package's
service (tenancy/view.py): its own code, its account's authorizers, the runtime-wide ones."""

from __future__ import annotations

from jamhost.domain.model import PackageRecord
from jamhost.domain.types.work_package import WorkPackage
from jamhost.engine.authorizer import names_authorizer
from jamhost.engine.constants import ProtocolConstants
from jamhost.tenancy.tariff import package_units
from jamhost.tenancy.view import TenantView


def units(view: TenantView, package: WorkPackage, encoded_size: int | None = None) -> int:
    """tenancy/tariff.py's `package_units` of the package against the store."""
    return package_units(package, view.code_size, encoded_size)


def declared_refine_gas(package: WorkPackage) -> int:
    """The refine gas the package declares: its items' limits, and G_I when it names an
    authorizer (Ψ_I may burn up to G_I on top of the items' refine gas)."""
    refine = sum(i.refine_gas_limit for i in package.items)
    if names_authorizer(package):
        refine += ProtocolConstants.full().package_auth_gas
    return refine


def claimed_units(record: PackageRecord, package: WorkPackage) -> int:
    """The units the submit charged the package (its claimed refine gas is the declared gas
    plus them): known from the record, without reading the code sizes again."""
    return max(0, record.refine_gas - declared_refine_gas(package))
