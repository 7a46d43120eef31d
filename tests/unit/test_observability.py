"""Observability: token redaction, the bounded service label, and that /metrics after a real
run (in-process app, memory store, packages processed) has no label outside bounded sets."""

from __future__ import annotations

import json
import secrets

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from jamhost import observability
from jamhost.api.app import create_app
from jamhost.app.runtime import build_runtime
from jamhost.config import JamSettings
from jamhost.examples import counter
from jamhost.observability import REDACTED, ServiceLabel, redact

SPEC_CODES = {"jam_bad_request", "jam_hash_mismatch", "jam_unauthenticated", "jam_authz",
              "jam_not_found", "jam_pending_limit", "jam_storage_quota", "jam_gas_quota",
              "jam_too_large", "jam_unsupported_media_type", "jam_rate_limit"}
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
LIFECYCLE = {"pending", "refining", "reported", "applied", "disputed", "failed"}


def jam_token() -> str:
    return f"jam_{secrets.token_hex(8)}_{secrets.token_hex(32)}"


# -- redaction -----------------------------------------------------------------------------

def test_redact_token_shapes_and_bearer_headers():
    tok = jam_token()
    assert redact(f"token={tok} end") == f"token={REDACTED} end"
    assert tok not in redact(json.dumps({"t": tok, "nested": [tok]}))
    # A bearer value of any shape is redacted, whatever the case of the scheme.
    for header in ("Authorization: Bearer abc.def-123", "authorization: bearer abc.def-123",
                   "BEARER   abc.def-123"):
        out = redact(header)
        assert "abc.def-123" not in out and REDACTED in out
    # Text without secrets is left alone (no over-redaction of hashes and ids).
    plain = "package 0x" + "ab" * 32 + " service 65536 jam_not_found"
    assert redact(plain) == plain


def test_registered_secrets_are_redacted_by_value():
    op = "operator-" + secrets.token_hex(12)
    assert op in redact(f"x {op} y")
    observability.register_secret(op)
    assert redact(f"x {op} y") == f"x {REDACTED} y"
    observability.register_secret("")  # ignored: it would match everywhere
    assert redact("plain text") == "plain text"


def test_config_secrets_are_registered():
    op, delegate, key = (secrets.token_hex(20) for _ in range(3))
    jam = JamSettings(store="memory", allowed_tokens=[op],
                      service_delegates={"65536": [delegate]}, token_hmac_key=key)
    observability.register_config_secrets(jam)
    out = redact(f"{op} {delegate} {key}")
    assert op not in out and delegate not in out and key not in out


def test_cli_settings_registers_config_secrets(tmp_path):
    """Not only `serve`: every command loads its config through cli.output.settings()."""
    from jamhost.cli.output import settings

    op, delegate, key = (secrets.token_hex(20) for _ in range(3))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[runtime.jam]\nstore = "memory"\nallowed_tokens = ["{op}"]\n'
                   f'token_hmac_key = "{key}"\nservice_delegates = {{"65536" = ["{delegate}"]}}\n')
    settings(str(cfg))
    out = redact(f"{op}|{delegate}|{key}")
    assert out == "|".join([REDACTED] * 3)


def test_redact_processor_walks_nested_values():
    tok = jam_token()
    event = {"event": "x", "headers": {"authorization": f"Bearer {tok}"}, "list": [tok, 3]}
    out = observability.redact_processor(None, "info", event)
    assert tok not in json.dumps(out)
    assert out["list"][1] == 3


# -- bounded service label -------------------------------------------------------------------

def test_service_label_none_mode_is_constant():
    label = ServiceLabel("none")
    assert {label(i) for i in range(65536, 65636)} == {"all"}


def test_service_label_bounded_to_50_plus_other():
    label = ServiceLabel("bounded")
    values = [label(i) for i in range(65536, 65536 + 200)]
    assert len(set(values) - {"other"}) == 50
    assert values[:50] == [str(i) for i in range(65536, 65586)]
    assert set(values[50:]) == {"other"}
    # A service seen early keeps its value; one seen late stays `other`.
    assert label(65536) == "65536" and label(65536 + 199) == "other"
    assert label(None) == "all"


def test_multiprocess_collection_caps_the_service_label():
    """Processes each pick their own first 50: the merged exposition still has at most 50."""

    class Fake:
        def collect(self):
            from prometheus_client.metrics_core import CounterMetricFamily

            fam = CounterMetricFamily("jamhost_packages", "x", labels=["status", "service"])
            for sid in range(65536, 65536 + 120):
                fam.add_metric(["applied", str(sid)], 1.0)
            fam.add_metric(["applied", "other"], 5.0)
            return [fam]

    fams = list(observability._CappedServiceLabel(Fake()).collect())
    samples: list[Sample] = fams[0].samples
    services = {s.labels["service"] for s in samples}
    assert len(services - {"other"}) == 50 and "other" in services
    other = [s.value for s in samples if s.labels["service"] == "other"]
    assert other == [70.0 + 5.0]  # 70 folded series plus the 5 already `other`
    assert sum(s.value for s in samples) == 125.0


# -- /metrics after a run ----------------------------------------------------------------------

@pytest.fixture
def app_client(monkeypatch):
    monkeypatch.setattr(ServiceLabel, "LIMIT", 3)  # 5 services: 3 keep their id, 2 are `other`
    op = "operator-" + secrets.token_hex(16)
    rt = build_runtime(JamSettings(store="memory", allowed_tokens=[op], workers=0,
                                   metrics_service_label="bounded",
                                   rate_limit_per_minute=0, service_rate_limit_per_minute=0,
                                   account_rate_limit_per_minute=0))
    app = create_app(rt)
    with TestClient(app) as client:
        yield client, op, app
    rt.close()


def test_metrics_labels_stay_in_bounded_sets(app_client):
    client, op, app = app_client
    oph = {"Authorization": f"Bearer {op}"}
    acc = client.post("/jam/accounts", json={"name": "t"}, headers=oph).json()
    tok = client.post(f"/jam/accounts/{acc['id']}/tokens", json={"name": "m"}, headers=oph)
    th = {"Authorization": f"Bearer {tok.json()['token']}"}
    sids = [client.post("/jam/services", json={"code": "0x" + counter.build().hex()},
                        headers=th).json()["service_id"] for _ in range(5)]
    for sid in sids:
        for i in range(2):
            r = client.post("/jam/packages", headers=th, json={"service_id": sid, "items": [
                {"payload": "0x" + bytes([i]).hex(), "refine_gas_limit": 10**6,
                 "accumulate_gas_limit": 10**6}]})
            assert r.status_code == 201, r.text
    depth = _gauge(client, "jamhost_queue_depth")
    assert depth == 10.0
    while client.post("/jam/process", headers=oph).status_code == 200:
        pass
    # Unbounded inputs that must not become label values: ids, garbage paths, bad tokens.
    for _ in range(20):
        junk = secrets.token_hex(32)
        client.get(f"/jam/packages/{junk}", headers=th)
        client.get(f"/nope/{junk}", headers={"Authorization": f"Bearer {junk}"})
        client.request("PROPFIND", f"/jam/preimages/{junk}")
        client.request(f"X{junk[:20].upper()}", "/healthz")
        client.get("/jam/packages", params={"service_id": junk}, headers=th)
    text = client.get("/metrics").text
    assert _gauge(client, "jamhost_queue_depth") == 0.0

    templates = set(app.openapi()["paths"]) | {getattr(r, "path", "") for r in app.routes} | {
        "unmatched"}
    seen: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("jamhost_"):
            continue
        for s in fam.samples:
            for k, v in s.labels.items():
                seen.setdefault(k, set()).add(v)
    assert seen["route"] <= templates, seen["route"] - templates
    assert seen["method"] <= METHODS | {"other"} and "other" in seen["method"]  # PROPFIND
    assert seen["status_class"] <= {"1xx", "2xx", "3xx", "4xx", "5xx"}
    assert seen["code"] <= SPEC_CODES
    assert seen["phase"] <= {"refine", "accumulate"}
    assert seen["status"] <= LIFECYCLE
    services = seen["service"] - {"all", "other"}
    assert len(services) <= 3 and "other" in seen["service"]
    assert services <= {str(s) for s in sids}
    assert "le" in seen  # histograms present (durations)
    allowed_keys = {"route", "method", "status_class", "code", "phase", "status", "service", "le",
                    "state"}
    assert set(seen) <= allowed_keys
    assert seen["state"] <= {"queued", "running"}  # the scheduler's queue gauge
    applied = [s.value for f in text_string_to_metric_families(text)
               if f.name == "jamhost_packages" for s in f.samples
               if s.name == "jamhost_packages_total" and s.labels["status"] == "applied"
               and s.labels["service"] in {str(x) for x in sids} | {"other"}]
    assert sum(applied) >= 10
    gas = [s.value for f in text_string_to_metric_families(text)
           if f.name == "jamhost_pvm_gas_used" for s in f.samples]
    assert sum(gas) > 0


def _gauge(client: TestClient, name: str) -> float:
    for fam in text_string_to_metric_families(client.get("/metrics").text):
        if fam.name == name:
            return fam.samples[0].value
    raise AssertionError(f"{name} not exported")
