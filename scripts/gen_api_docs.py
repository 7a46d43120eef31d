"""Render the HTTP API reference, docs/api.md, from the app's OpenAPI document.

The app is built in-process (`jamhost.api.app.create_app` on a memory-store runtime), so the
reference is exactly the routes the server serves. The error table comes from the one mapping
from refusal to status (`jamhost.api.errors.STATUS`).

    python scripts/gen_api_docs.py           # rewrite docs/api.md
    python scripts/gen_api_docs.py --check   # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "docs" / "api.md"
COMMAND = "python scripts/gen_api_docs.py"
METHODS = ("get", "head", "post", "put", "patch", "delete")

# Where each endpoint is in the Python client (`JamClient` / `AsyncJamClient`) and the CLI.
# A route missing here is listed without them (and should be added to both).
USE: dict[str, tuple[str, str | None]] = {
    "GET /healthz": ("health", None),
    "GET /readyz": ("ready", None),
    "GET /system/status": ("status", "jamhost jam status"),
    "GET /metrics": ("metrics", None),
    "POST /jam/accounts": ("create_account", "jamhost accounts create (admin hook)"),
    "GET /jam/accounts/me": ("me", "jamhost jam me"),
    "GET /jam/accounts/{account_id}/tokens": ("tokens", "jamhost jam token list"),
    "POST /jam/accounts/{account_id}/tokens": ("create_token", "jamhost jam token create"),
    "DELETE /jam/accounts/{account_id}/tokens/{accessor}": ("revoke_token",
                                                            "jamhost jam token revoke"),
    "GET /jam/services": ("services", "jamhost jam service list"),
    "POST /jam/services": ("create_service", "jamhost jam service create"),
    "GET /jam/services/{service_id}": ("service", "jamhost jam service show"),
    "PUT /jam/services/{service_id}/code": ("upgrade_code", "jamhost jam service upgrade"),
    "GET /jam/services/{service_id}/storage": ("storage_items", "jamhost jam storage list"),
    "GET /jam/services/{service_id}/storage/{key}": ("storage", "jamhost jam storage get"),
    "GET /jam/services/{service_id}/delegates": ("delegates", "jamhost jam delegate list"),
    "POST /jam/services/{service_id}/delegates": ("add_delegate", "jamhost jam delegate add"),
    "DELETE /jam/services/{service_id}/delegates/{delegate_id}": (
        "remove_delegate", "jamhost jam delegate remove"),
    "GET /jam/services/{service_id}/quota": ("quota", "jamhost jam quota"),
    "PUT /jam/services/{service_id}/quota": ("set_quota", "jamhost quotas set (admin hook)"),
    "POST /jam/services/{service_id}/credit": ("credit", None),
    "GET /jam/preimages/{hash}": ("get_preimage, download_preimage",
                                  "jamhost jam preimage-get"),
    "HEAD /jam/preimages/{hash}": ("preimage_head", None),
    "PUT /jam/preimages/{hash}": ("put_preimage", "jamhost jam preimage"),
    "GET /jam/preimages/{hash}/meta": ("preimage_meta", "jamhost jam preimage-meta"),
    "GET /jam/packages": ("packages", "jamhost jam packages"),
    "POST /jam/packages": ("submit_package", "jamhost jam package, jamhost jam bulk"),
    "GET /jam/packages/{package_id}": ("package", "jamhost jam package-show"),
    "GET /jam/packages/{package_id}/report": ("report", "jamhost jam report"),
    "GET /jam/reports": ("reports", "jamhost jam reports"),
    "GET /jam/receipts": ("receipts", "jamhost jam receipts, jamhost receipts verify"),
    "GET /jam/receipts/{hash}": ("receipt", "jamhost jam receipt"),
    "POST /jam/process": ("process", None),
    "GET /jam/audit": ("audit", "jamhost audit (admin hook)"),
}


def openapi() -> dict[str, Any]:
    from jamhost.api.app import create_app
    from jamhost.app.runtime import build_runtime
    from jamhost.config import JamSettings

    rt = build_runtime(JamSettings(store="memory", token_hmac_key="docs-generator-key-0000",
                                   workers=0))
    try:
        return create_app(rt).openapi()
    finally:
        rt.close()


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if schema.get("format") == "binary":
        return "bytes"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "minLength" in schema or "maxLength" in schema:
        bounds.append(f"length {schema.get('minLength', 0)}..{schema.get('maxLength', '')}")
    return f"{kind} ({', '.join(bounds)})" if bounds else str(kind)


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/components/schemas/"):
        return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
    return schema


def _fields(schema: dict[str, Any], doc: dict[str, Any], out: list[str], prefix: str = "") -> None:
    schema = _resolve(schema, doc)
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, doc)
        default = f" (default `{json.dumps(sub['default'])}`)" if "default" in sub else ""
        req = "required" if name in required else "optional"
        out.append(f"| `{prefix}{name}` | {_type(sub)} | {req}{default} |")
        if sub.get("type") == "array" and "properties" in sub.get("items", {}):
            _fields(sub["items"], doc, out, f"{prefix}{name}[].")


def _operation(path: str, method: str, op: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    key = f"{method.upper()} {path}"
    out = [f"### `{key}`", ""]
    out.append(f"{op.get('summary', '')}.")
    if key in USE:
        py, cli = USE[key]
        names = ", ".join(f"`{m.strip()}`" for m in py.split(","))
        out.append(f"Python: {names}." + (
            " CLI: " + ", ".join(f"`{c.strip()}`" for c in cli.split(",")) + "."
            if cli else ""))
    # The description repeats the summary as its first line (both from the docstring).
    rest = op.get("description", "").strip().split("\n", 1)
    if len(rest) == 2 and rest[1].strip():
        out += ["", rest[1].strip()]
    params = op.get("parameters", [])
    if params:
        out += ["", "| parameter | in | type | |", "|---|---|---|---|"]
        for p in params:
            req = "required" if p.get("required") else "optional"
            out.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | {req} |")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            out += ["", f"Body `{media}`: {_type(_resolve(schema, doc))}"]
            rows: list[str] = []
            _fields(schema, doc, rows)
            if rows:
                out += ["", "| field | type | |", "|---|---|---|", *rows]
    codes = sorted(op.get("responses", {}))
    ok = [c for c in codes if int(c) < 400 or c == "503"]
    refused = [c for c in codes if int(c) >= 400 and c != "503"]
    out += ["", "Answers: " + ", ".join(f"`{c}`" for c in ok)
            + ("; refusals: " + ", ".join(f"`{c}`" for c in refused) if refused else "")
            + " (codes as in the error table).", ""]
    return out


def _errors() -> list[str]:
    from jamhost.api.errors import STATUS

    out = ["| status | code | refusal |", "|---|---|---|"]
    for cls, status in STATUS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out.append(f"| {status} | `{cls.code}` | `{cls.__name__}`{' ' + doc if doc else ''} |")
    return out


def render(doc: dict[str, Any] | None = None) -> str:
    doc = doc or openapi()
    info = doc["info"]
    out = [
        "# HTTP API reference",
        "",
        f"<!-- generated by `{COMMAND}` from the app's OpenAPI document; do not edit -->",
        "",
        f"{info['title']} {info['version']}: {info.get('description', '').rstrip('.')}. "
        "The contract is "
        "SPEC.md §3; who may call what is in [tenant-guide.md](tenant-guide.md). A running "
        "server also serves this as `/openapi.json` and `/docs`.",
        "",
        "- Authentication: `Authorization: Bearer <token>` on everything but `/healthz`, "
        "`/readyz` and `/metrics`.",
        "- Hashes and byte strings are `0x`-prefixed lowercase hex; paths take a hash with or "
        "without `0x`.",
        "- Lists take `limit` (default 50, at most 500) and `cursor`, and answer "
        '`{"items": [...], "next_cursor": "<opaque>" | null}`.',
        '- Every refusal is `{"error": "<message>", "code": "<code>"}` with one of these:',
        "",
        *_errors(),
        "",
        "The Python client `jamhost.client` (`JamClient`, `AsyncJamClient`) has one method per "
        "endpoint and raises one exception class per code; the CLI's `jamhost jam ...` "
        "commands are in [cli.md](cli.md).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((path, method, item[method]))
    for tag, ops in by_tag.items():
        out += [f"## {tag}", ""]
        for path, method, op in ops:
            out += _operation(path, method, op, doc)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(REPO)} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
