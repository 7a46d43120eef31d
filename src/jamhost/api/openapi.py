"""The OpenAPI document as the API is: bearer auth, the SPEC error answers, examples; and the
`/docs` page, served with Swagger UI's assets from the `fastapi-offline` package (no CDN).

FastAPI's generated document advertises `422 HTTPValidationError` on every operation with a
parameter, which the server never answers (SPEC §3: bad input is `400 jam_bad_request`), and
documents no error at all. Here every operation lists exactly the error statuses it can
answer (`ERRORS`; tests/integration/test_openapi_docs.py provokes each one on a real server),
each with the error body schema and the SPEC codes of that status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse

# SPEC §3's table: status -> the codes it carries.
SPEC_CODES: dict[int, list[str]] = {
    400: ["jam_bad_request", "jam_hash_mismatch"], 401: ["jam_unauthenticated"],
    403: ["jam_authz"], 404: ["jam_not_found"],
    409: ["jam_pending_limit", "jam_storage_quota", "jam_gas_quota"], 413: ["jam_too_large"],
    415: ["jam_unsupported_media_type"], 429: ["jam_rate_limit"],
}
WHY = {400: "Bad input (`jam_bad_request`; `jam_hash_mismatch`: the body does not hash to "
            "the id)",
       401: "No token, or not a valid one (`WWW-Authenticate: Bearer`)",
       403: "The token may not do this (scope, role, operator-only; a service that is not "
            "the caller's, existing or not, is answered alike)",
       404: "No such object, or one the caller may not see (answered alike)",
       409: "A quota or the pending cap is reached", 413: "The body is over the size cap",
       415: "The body's media type is not one this operation takes",
       429: "The caller's rate budget is spent (`Retry-After` says when to retry)"}

OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}  # no token needed
_J = (400, 403, 404, 413, 415)  # a JSON body on a service path
# Error statuses beyond 401 and 429 (which every authenticated operation can answer).
ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/system/status"): (),
    ("POST", "/jam/accounts"): (400, 403, 413, 415),
    ("GET", "/jam/accounts/me"): (),
    ("POST", "/jam/accounts/{account_id}/tokens"): _J,
    ("GET", "/jam/accounts/{account_id}/tokens"): (403, 404),
    ("DELETE", "/jam/accounts/{account_id}/tokens/{accessor}"): (403, 404),
    ("POST", "/jam/services"): (400, 403, 413, 415),
    ("GET", "/jam/services"): (400,),
    ("GET", "/jam/services/{service_id}"): (400, 403, 404),
    ("PUT", "/jam/services/{service_id}/code"): (400, 403, 404, 413),
    ("GET", "/jam/services/{service_id}/storage"): (400, 403, 404),
    ("GET", "/jam/services/{service_id}/storage/{key}"): (400, 403, 404),
    ("POST", "/jam/services/{service_id}/delegates"): _J,
    ("GET", "/jam/services/{service_id}/delegates"): (400, 403, 404),
    ("DELETE", "/jam/services/{service_id}/delegates/{delegate_id}"): (400, 404),
    ("GET", "/jam/services/{service_id}/quota"): (400, 403, 404),
    ("PUT", "/jam/services/{service_id}/quota"): _J,
    ("POST", "/jam/services/{service_id}/credit"): _J,
    ("PUT", "/jam/preimages/{hash}"): (400, 403, 404, 409, 413),
    ("HEAD", "/jam/preimages/{hash}"): (404,),
    ("GET", "/jam/preimages/{hash}"): (404,),
    ("GET", "/jam/preimages/{hash}/meta"): (404,),
    ("POST", "/jam/packages"): (400, 403, 404, 409, 413, 415),
    ("GET", "/jam/packages"): (400, 403),
    ("GET", "/jam/packages/{package_id}"): (404,),
    ("GET", "/jam/packages/{package_id}/report"): (404,),
    ("GET", "/jam/packages/{package_id}/accumulation"): (404,),
    ("GET", "/jam/services/{service_id}/accumulations"): (400, 403, 404),
    ("GET", "/jam/reports"): (400, 403),
    ("GET", "/jam/receipts"): (400, 403),
    ("GET", "/jam/receipts/{hash}"): (404,),
    ("POST", "/jam/process"): (403,),
    ("GET", "/jam/audit"): (400, 403),
}


# Answers besides the operation's success status and its errors.
OTHER_ANSWERS: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/readyz"): {"503": "The store does not answer"},
    ("POST", "/jam/process"): {"204": "Nothing was pending"},
    ("POST", "/jam/packages"): {"200": "The same package was submitted before: that one"},
    ("DELETE", "/jam/accounts/{account_id}/tokens/{accessor}"): {},
}


def error_statuses(method: str, path: str) -> tuple[int, ...]:
    if (method, path) in OPEN:
        return ()
    return tuple(sorted({*ERRORS[(method, path)], 401, 429}))


ERROR_SCHEMA = {
    "type": "object", "required": ["error", "code"], "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "What was wrong, for a person; never "
                  "echoes a token or the body"},
        "code": {"type": "string", "enum": sorted({c for cs in SPEC_CODES.values() for c in cs}),
                 "description": "The SPEC §3 code: what a program should branch on"}},
}
SHORT_PACKAGE_EXAMPLE = {
    "service_id": 65536,
    "items": [{"payload": "0x0100000000000000", "refine_gas_limit": 1000000,
               "accumulate_gas_limit": 1000000}],
}


def _error_responses(method: str, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in error_statuses(method, path):
        codes = SPEC_CODES[status]
        out[str(status)] = {
            "description": WHY[status],
            "content": {"application/json": {
                "schema": {"allOf": [{"$ref": "#/components/schemas/Error"}],
                           "properties": {"code": {"enum": codes}}},
                "example": {"error": WHY[status].split(" (")[0].lower(), "code": codes[0]}}}}
        if status == 401:
            out["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                          "description": "`Bearer`"}}
        if status == 429:
            out["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                     "description": "seconds to wait"}}
    return out


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "A jamhost token (`jam_<accessor>_<secret>`) or an operator token "
                       "of `allowed_tokens`"}}
    doc["security"] = [{"bearer": []}]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            m = method.upper()
            op["responses"].pop("422", None)
            text = op.get("description", "")
            if text:  # the docstring: its first line is the summary, all of it the description
                op["summary"] = text.split("\n")[0].rstrip(".")
            op["responses"].update(_error_responses(m, path))
            for status, text in OTHER_ANSWERS.get((m, path), {}).items():
                op["responses"].setdefault(status, {"description": text})
            if (m, path) in OPEN:
                op["security"] = []
            if (m, path) == ("POST", "/jam/packages"):
                content = op["requestBody"]["content"]["application/json"]
                content["examples"] = {"short": {
                    "summary": "The short form: one item, defaults for the rest",
                    "value": SHORT_PACKAGE_EXAMPLE}}
    app.openapi_schema = doc
    return doc


def static_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def install(app: FastAPI) -> None:
    # type-ignore reason: FastAPI's documented way to replace the OpenAPI document
    app.openapi = lambda: build(app)  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})  # no badge from a validator host

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404)
        return FileResponse(static_dir() / name)
