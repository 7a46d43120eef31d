"""Turning what a client sent into a GP work package (SPEC §3 "Package JSON").

Three forms: GP bytes (`application/octet-stream`), the full w3f JSON of
`codec/*/work_package.json`, and the short JSON form whose omitted fields take defaults
(code hash: the service's current one; context: zeros; authorizer: none, or `authorizer`
{service_id?, code_hash, config?}; an item's imports: none, or `import_segments`
[{segments_root | package_hash, index}]).
"""

from __future__ import annotations

from typing import Any

from jamhost.domain.constants import IMPORT_PACKAGE_HASH_FLAG
from jamhost.domain.errors import CodecError
from jamhost.domain.refusals import BadRequest
from jamhost.domain.types.import_spec import ImportSpec
from jamhost.domain.types.refine_context import RefineContext
from jamhost.domain.types.work_item import WorkItem
from jamhost.domain.types.work_package import WorkPackage

ZERO = bytes(32)
ZERO_CONTEXT = RefineContext(anchor=ZERO, state_root=ZERO, beefy_root=ZERO,
                             lookup_anchor=ZERO, lookup_anchor_slot=0, prerequisites=())
SHORT_ITEM_KEYS = {"payload", "refine_gas_limit", "accumulate_gas_limit", "code_hash",
                   "export_count", "service", "service_id", "import_segments"}
SHORT_KEYS = {"service_id", "items", "authorization", "context", "authorizer"}
AUTHORIZER_KEYS = {"service_id", "code_hash", "config"}
IMPORT_KEYS = ("segments_root", "package_hash")


def decode_package_bytes(body: bytes) -> WorkPackage:
    try:
        return WorkPackage.decode(body)
    except CodecError as exc:
        raise BadRequest(f"not a GP-encoded work package: {exc}") from None


def package_service(pkg: WorkPackage, declared: int | None) -> int:
    """The one service every item targets (and `declared`, if the client named one)."""
    services = {item.service for item in pkg.items}
    if declared is not None:
        services.add(declared)
    if len(services) != 1:
        raise BadRequest("every item must target the package's service_id")
    return services.pop()


def parse_package_json(obj: Any, current_code_hash: Any) -> tuple[WorkPackage, int]:
    """Parse either JSON form. `current_code_hash(service_id)` supplies the default code hash
    (and is where the caller checks that the service exists and may be used)."""
    if not isinstance(obj, dict):
        raise BadRequest("the package must be a JSON object")
    declared = _u32(obj["service_id"], "service_id") if "service_id" in obj else None
    try:
        if "auth_code_host" in obj:  # the full w3f form
            full = {k: v for k, v in obj.items() if k != "service_id"}
            pkg = WorkPackage.from_json(full)
            return pkg, package_service(pkg, declared)
        unknown = set(obj) - SHORT_KEYS
        if unknown:
            # never the client's name back (it may be a pasted token): the allowed ones
            raise BadRequest("unknown field; a package takes: " + ", ".join(sorted(SHORT_KEYS)))
        if declared is None:
            raise BadRequest("service_id is required")
        items_json = obj.get("items")
        if not isinstance(items_json, list) or not items_json:
            raise BadRequest("items must be a non-empty list")
        default_hash = current_code_hash(declared)
        items = tuple(_short_item(it, i, declared, default_hash)
                      for i, it in enumerate(items_json))
        context = (RefineContext.from_json(obj["context"], "context")
                   if obj.get("context") is not None else ZERO_CONTEXT)
        host, code_hash, config = _authorizer(obj.get("authorizer"), declared)
        pkg = WorkPackage(auth_code_host=host, auth_code_hash=code_hash, context=context,
                          authorization=_hex(obj.get("authorization", "0x"), "authorization"),
                          authorizer_config=config, items=items)
        return pkg, declared
    except CodecError as exc:
        raise BadRequest(str(exc)) from None


def _authorizer(value: Any, service_id: int) -> tuple[int, bytes, bytes]:
    """(p_h, p_u, p_f) from the short form's `authorizer` {service_id?, code_hash, config?};
    none named: the package's service and the zero hash (no authorizer runs)."""
    if value is None:
        return service_id, ZERO, b""
    if not isinstance(value, dict):
        raise BadRequest("authorizer must be an object")
    unknown = set(value) - AUTHORIZER_KEYS
    if unknown:
        raise BadRequest(f"unknown field authorizer.{sorted(unknown)[0]}")
    if "code_hash" not in value:
        raise BadRequest("authorizer.code_hash is required")
    host = _u32(value.get("service_id", service_id), "authorizer.service_id")
    return (host, _hex(value["code_hash"], "authorizer.code_hash", 32),
            _hex(value.get("config", "0x"), "authorizer.config"))


def _short_item(item: Any, i: int, service_id: int, default_hash: bytes) -> WorkItem:
    where = f"items[{i}]"
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an object")
    unknown = set(item) - SHORT_ITEM_KEYS
    if unknown:
        raise BadRequest(f"unknown field in {where}; an item takes: "
                         + ", ".join(sorted(SHORT_ITEM_KEYS)))
    for key in ("service", "service_id"):
        if key in item and _u32(item[key], f"{where}.{key}") != service_id:
            raise BadRequest(f"{where} targets another service")
    for key in ("payload", "refine_gas_limit", "accumulate_gas_limit"):
        if key not in item:
            raise BadRequest(f"{where}.{key} is required")
    code_hash = (_hex(item["code_hash"], f"{where}.code_hash", 32)
                 if item.get("code_hash") is not None else default_hash)
    return WorkItem(service=service_id, code_hash=code_hash,
                    refine_gas_limit=_uint(item["refine_gas_limit"], f"{where}.refine_gas_limit",
                                           64),
                    accumulate_gas_limit=_uint(item["accumulate_gas_limit"],
                                               f"{where}.accumulate_gas_limit", 64),
                    export_count=_uint(item.get("export_count", 0), f"{where}.export_count", 16),
                    payload=_hex(item["payload"], f"{where}.payload"),
                    import_segments=_imports(item.get("import_segments", []), where))


def _imports(value: Any, where: str) -> tuple[ImportSpec, ...]:
    """An item's `import_segments`: [{segments_root | package_hash, index}] (GP (h, i) with
    h ∈ H or H⊞: a segments root, or the exporting package's hash)."""
    if not isinstance(value, list):
        raise BadRequest(f"{where}.import_segments must be a list")
    out = []
    for n, spec in enumerate(value):
        name = f"{where}.import_segments[{n}]"
        if not isinstance(spec, dict) or set(spec) - {*IMPORT_KEYS, "index"} \
                or sum(k in spec for k in IMPORT_KEYS) != 1 or "index" not in spec:
            raise BadRequest(f"{name} must be {{segments_root or package_hash, index}}")
        by_package = "package_hash" in spec
        root = _hex(spec["package_hash" if by_package else "segments_root"], name, 32)
        index = _uint(spec["index"], f"{name}.index", 15)
        out.append(ImportSpec(root, index | (IMPORT_PACKAGE_HASH_FLAG if by_package else 0)))
    return tuple(out)


def _uint(value: Any, name: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise BadRequest(f"{name} must be an integer in [0, 2^{bits})")
    return value


def _u32(value: Any, name: str) -> int:
    return _uint(value, name, 32)


def _hex(value: Any, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a hex string")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise BadRequest(f"{name} is not valid hex") from None
    if len(text) != 2 * len(data) or (length is not None and len(data) != length):
        raise BadRequest(f"{name} must be {length or 'whole'} bytes of hex")
    return data


def parse_hash(text: str, name: str = "hash") -> bytes:
    """A 32-byte hash from a path or query, with or without `0x`."""
    return _hex(text, name, 32)


def parse_hex(text: str, name: str) -> bytes:
    return _hex(text, name)
