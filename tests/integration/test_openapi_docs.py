"""The OpenAPI document and `/docs` of a real `jamhost serve`: a bearer security scheme, a summary
and description for every operation, no 422, the SPEC error answers, and every documented
status provoked on the server (so the document says only what the route can answer). `/docs`
loads Swagger UI from jamhost itself: its HTML names no other host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OPERATOR_TOKEN, Server, make_tenant, simple_package, start_server

CAP = 4096
NO_LIMITS = {"rate_limit_per_minute": 0, "service_rate_limit_per_minute": 0,
             "max_preimage_bytes": CAP, "max_package_bytes": CAP}
BIG_JSON = b'{"name": "' + b"x" * (1 << 20) + b'"}'  # over the 1 MiB cap of small JSON bodies
JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain"}
H0 = "0x" + "00" * 32


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = start_server(tmp_path_factory.mktemp("openapi"), **NO_LIMITS)
    yield s
    s.stop()


def test_document_has_bearer_scheme_descriptions_and_spec_errors(srv: Server) -> None:
    with srv.client() as c:
        doc = c.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "code"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    ops = [(m.upper(), p, o) for p, item in doc["paths"].items() for m, o in item.items()]
    assert len(ops) >= 30
    for method, path, op in ops:
        where = f"{method} {path}"
        assert op.get("summary") and len(op.get("description", "")) > 15, where
        assert "422" not in op["responses"], where
        for status, answer in op["responses"].items():
            if int(status) >= 400 and int(status) != 503:
                schema = answer["content"]["application/json"]["schema"]
                assert schema["allOf"] == [{"$ref": "#/components/schemas/Error"}], where
                assert schema["properties"]["code"]["enum"], where
        if path in ("/healthz", "/readyz", "/metrics"):
            assert op["security"] == [], where
        else:
            assert {"401", "429"} <= set(op["responses"]), where
    body = doc["paths"]["/jam/packages"]["post"]["requestBody"]["content"]["application/json"]
    example = body["examples"]["short"]["value"]
    assert example["items"][0]["refine_gas_limit"] > 0


def _provocations(srv: Server) -> tuple[dict[tuple[str, str], dict[int, tuple]], dict[str, str]]:
    """(method, template) -> {status: (who, path, request kwargs)}: one request per documented
    error status beyond 401/429, which are provoked for every operation."""
    a, b = make_tenant(srv, "doc-a"), make_tenant(srv, "doc-b")
    with srv.client(a.token) as ca:
        r = ca.post(f"/jam/accounts/{a.account_id}/tokens", json={"scopes": ["read"]}).json()
        a2 = ca.post("/jam/services", json={}).json()["service_id"]
    with srv.op() as op:  # a2: no pending slot and no storage left
        assert op.put(f"/jam/services/{a2}/quota",
                      json={"pending_packages": 0, "storage_bytes": 1}).status_code == 200
    who = {"a": a.token, "r": r["token"], "op": OPERATOR_TOKEN}
    sid, bsid, acc = a.service_id, b.service_id, a.account_id
    bad_json = {"content": b"{", "headers": JSON}
    big = {"content": BIG_JSON, "headers": JSON}
    text = {"content": b"{}", "headers": TEXT}
    return {
        ("POST", "/jam/accounts"): {
            400: ("op", "/jam/accounts", bad_json),
            403: ("a", "/jam/accounts", {"json": {"name": "x"}}),
            413: ("op", "/jam/accounts", big), 415: ("op", "/jam/accounts", text)},
        ("POST", "/jam/accounts/{account_id}/tokens"): {
            400: ("a", f"/jam/accounts/{acc}/tokens", {"json": {"expires_at": "soon"}}),
            403: ("r", f"/jam/accounts/{acc}/tokens", {"json": {}}),
            404: ("op", "/jam/accounts/nope/tokens", {"json": {}}),
            413: ("a", f"/jam/accounts/{acc}/tokens", big),
            415: ("a", f"/jam/accounts/{acc}/tokens", text)},
        ("GET", "/jam/accounts/{account_id}/tokens"): {
            403: ("r", f"/jam/accounts/{acc}/tokens", {}),
            404: ("op", "/jam/accounts/nope/tokens", {})},
        ("DELETE", "/jam/accounts/{account_id}/tokens/{accessor}"): {
            403: ("r", f"/jam/accounts/{acc}/tokens/{a.accessor}", {}),
            404: ("a", f"/jam/accounts/{acc}/tokens/{'0' * 16}", {})},
        ("POST", "/jam/services"): {
            400: ("a", "/jam/services", bad_json),
            403: ("r", "/jam/services", {"json": {}}),
            413: ("a", "/jam/services", big), 415: ("a", "/jam/services", text)},
        ("GET", "/jam/services"): {400: ("a", "/jam/services", {"params": {"limit": "x"}})},
        ("GET", "/jam/services/{service_id}"): {
            400: ("a", "/jam/services/x", {}), 403: ("a", f"/jam/services/{bsid}", {}),
            404: ("op", "/jam/services/4000000000", {})},
        ("PUT", "/jam/services/{service_id}/code"): {
            400: ("a", f"/jam/services/{sid}/code", {"content": b""}),
            403: ("r", f"/jam/services/{sid}/code", {"content": b"\x00"}),
            404: ("op", "/jam/services/4000000000/code", {"content": b"\x00"}),
            413: ("a", f"/jam/services/{sid}/code", {"content": b"\x00" * (CAP + 1)})},
        ("GET", "/jam/services/{service_id}/storage"): {
            400: ("a", f"/jam/services/{sid}/storage", {"params": {"prefix": "zz"}}),
            403: ("a", f"/jam/services/{bsid}/storage", {}),
            404: ("op", "/jam/services/4000000000/storage", {})},
        ("GET", "/jam/services/{service_id}/storage/{key}"): {
            400: ("a", f"/jam/services/{sid}/storage/zz", {}),
            403: ("a", f"/jam/services/{bsid}/storage/0x00", {}),
            404: ("op", "/jam/services/4000000000/storage/0x00", {})},
        ("POST", "/jam/services/{service_id}/delegates"): {
            400: ("a", f"/jam/services/{sid}/delegates", bad_json),
            403: ("r", f"/jam/services/{sid}/delegates", {"json": {"accessor": b.accessor}}),
            404: ("op", "/jam/services/4000000000/delegates", {"json": {"accessor": b.accessor}}),
            413: ("a", f"/jam/services/{sid}/delegates", big),
            415: ("a", f"/jam/services/{sid}/delegates", text)},
        ("GET", "/jam/services/{service_id}/delegates"): {
            400: ("a", "/jam/services/x/delegates", {}),
            403: ("a", f"/jam/services/{bsid}/delegates", {}),
            404: ("op", "/jam/services/4000000000/delegates", {})},
        ("DELETE", "/jam/services/{service_id}/delegates/{delegate_id}"): {
            400: ("a", "/jam/services/x/delegates/1", {}),
            404: ("a", f"/jam/services/{sid}/delegates/999", {})},
        ("GET", "/jam/services/{service_id}/quota"): {
            400: ("a", "/jam/services/x/quota", {}),
            403: ("a", f"/jam/services/{bsid}/quota", {}),
            404: ("op", "/jam/services/4000000000/quota", {})},
        ("PUT", "/jam/services/{service_id}/quota"): {
            400: ("op", f"/jam/services/{sid}/quota", bad_json),
            403: ("a", f"/jam/services/{sid}/quota", {"json": {}}),
            404: ("op", "/jam/services/4000000000/quota", {"json": {}}),
            413: ("op", f"/jam/services/{sid}/quota", big),
            415: ("op", f"/jam/services/{sid}/quota", text)},
        ("POST", "/jam/services/{service_id}/credit"): {
            400: ("op", f"/jam/services/{sid}/credit", bad_json),
            403: ("a", f"/jam/services/{sid}/credit", {"json": {"amount": 1}}),
            404: ("op", "/jam/services/4000000000/credit", {"json": {"amount": 1}}),
            413: ("op", f"/jam/services/{sid}/credit", big),
            415: ("op", f"/jam/services/{sid}/credit", text)},
        ("PUT", "/jam/preimages/{hash}"): {
            400: ("a", "/jam/preimages/zz", {"content": b"x"}),
            403: ("r", f"/jam/preimages/{H0}", {"content": b"x", "params": {"service_id": sid}}),
            404: ("op", f"/jam/preimages/{H0}", {"content": b"x",
                                                 "params": {"service_id": 4000000000}}),
            409: ("a", "/jam/preimages/0x" + _blake(b"too big for a2"),
                  {"content": b"too big for a2", "params": {"service_id": a2}}),
            413: ("a", f"/jam/preimages/{H0}", {"content": b"x" * (CAP + 1),
                                                "params": {"service_id": sid}})},
        ("HEAD", "/jam/preimages/{hash}"): {404: ("a", f"/jam/preimages/{H0}", {})},
        ("GET", "/jam/preimages/{hash}"): {404: ("a", f"/jam/preimages/{H0}", {})},
        ("GET", "/jam/preimages/{hash}/meta"): {404: ("a", f"/jam/preimages/{H0}/meta", {})},
        ("POST", "/jam/packages"): {
            400: ("a", "/jam/packages", bad_json),
            403: ("r", "/jam/packages", {"json": simple_package(sid)}),
            404: ("op", "/jam/packages", {"json": simple_package(4000000000)}),
            409: ("a", "/jam/packages", {"json": simple_package(a2)}),
            413: ("a", "/jam/packages", {"content": b" " * (CAP + 1), "headers": JSON}),
            415: ("a", "/jam/packages", text)},
        ("GET", "/jam/packages"): {
            400: ("a", "/jam/packages", {"params": {"limit": "x"}}),
            403: ("a", "/jam/packages", {"params": {"service_id": bsid}})},
        ("GET", "/jam/packages/{package_id}"): {404: ("a", f"/jam/packages/{H0}", {})},
        ("GET", "/jam/packages/{package_id}/report"): {
            404: ("a", f"/jam/packages/{H0}/report", {})},
        ("GET", "/jam/packages/{package_id}/accumulation"): {
            404: ("a", f"/jam/packages/{H0}/accumulation", {})},
        ("GET", "/jam/services/{service_id}/accumulations"): {
            400: ("a", "/jam/services/x/accumulations", {}),
            403: ("a", f"/jam/services/{bsid}/accumulations", {}),
            404: ("op", "/jam/services/4000000000/accumulations", {})},
        ("GET", "/jam/reports"): {
            400: ("a", "/jam/reports", {"params": {"limit": "x"}}),
            403: ("a", "/jam/reports", {"params": {"service_id": bsid}})},
        ("GET", "/jam/receipts"): {
            400: ("a", "/jam/receipts", {"params": {"limit": "x"}}),
            403: ("a", "/jam/receipts", {"params": {"service_id": bsid}})},
        ("GET", "/jam/receipts/{hash}"): {404: ("a", f"/jam/receipts/{H0}", {})},
        ("POST", "/jam/process"): {403: ("a", "/jam/process", {})},
        ("GET", "/jam/audit"): {
            400: ("op", "/jam/audit", {"params": {"limit": "x"}}),
            403: ("a", "/jam/audit", {})},
    }, who


def _blake(data: bytes) -> str:
    import hashlib

    return hashlib.blake2b(data, digest_size=32).hexdigest()


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: H0 if m.group(0) in ("{hash}", "{package_id}")
                  else "1", template)


def test_every_documented_status_is_answered(srv: Server, tmp_path: Path) -> None:
    with srv.client() as c:
        doc = c.get("/openapi.json").json()
    provoke, tokens = _provocations(srv)
    open_ops = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
    limited = start_server(tmp_path / "limited", rate_limit_per_minute=2)
    try:
        spent = make_tenant(limited, "spent")
        with limited.client(spent.token) as c:
            while c.get("/jam/accounts/me").status_code != 429:
                pass
        wrong: list[tuple[Any, ...]] = []
        for template, item in doc["paths"].items():
            for method, op in item.items():
                key = (method.upper(), template)
                documented = {int(s) for s in op["responses"] if int(s) >= 400} - {503}
                if key in open_ops:
                    assert documented == set(), key
                    continue
                cases = provoke.get(key, {})
                if documented != set(cases) | {401, 429}:
                    wrong.append((key, "documented", sorted(documented), sorted(cases)))
                for status, (who, path, kw) in cases.items():
                    with srv.client(tokens[who]) as c:
                        resp = c.request(key[0], path, **kw)
                    if resp.status_code != status:
                        wrong.append((key, status, resp.status_code, resp.text[:120]))
                    elif key[0] != "HEAD":
                        codes = op["responses"][str(status)]["content"]["application/json"][
                            "schema"]["properties"]["code"]["enum"]
                        if resp.json()["code"] not in codes:
                            wrong.append((key, status, resp.text[:120]))
                with srv.client() as c:  # no token
                    if c.request(key[0], _concrete(template)).status_code != 401:
                        wrong.append((key, 401))
                with limited.client(spent.token) as c:
                    if c.request(key[0], _concrete(template)).status_code != 429:
                        wrong.append((key, 429))
        assert not wrong, "\n".join(map(str, wrong))
    finally:
        limited.stop()


def test_docs_page_is_served_offline(srv: Server) -> None:
    with srv.client() as c:
        html = c.get("/docs")
        assert html.status_code == 200
        refs = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html.text)
        assert refs, html.text
        assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html.text), html.text
        for ref in refs:
            assert ref.startswith("/"), ref
            assert c.get(ref).status_code == 200, ref
        assert "SwaggerUIBundle" in c.get("/docs/assets/swagger-ui-bundle.js").text
        assert c.get("/docs/assets/../../etc/passwd").status_code == 404
