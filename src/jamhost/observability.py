"""Logging with token redaction, and Prometheus metrics with bounded labels only.

Labels never carry tenant data: routes are templates (`/jam/packages/{package_id}`), statuses
are classes (`2xx`), reasons come from fixed sets. A service label exists only with
`metrics_service_label = "bounded"` and then takes at most 50 values plus `other`.

Several processes on one host (`jamhost serve` replicas, `jamhost worker`s) can share their
metrics through prometheus_client's multiprocess mode: set `PROMETHEUS_MULTIPROC_DIR` to an
empty directory (the same for all of them, emptied before they start); every `/metrics` then
answers the sum over the processes. Without it each process has its own registry.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

TOKEN_SHAPE = re.compile(r"jam_[0-9a-f]{16}_[0-9a-f]{64}")
BEARER_SHAPE = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
REDACTED = "[redacted]"

_extra_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Operator tokens, delegate tokens of the config and the HMAC key need not look like jam
    tokens: redact them by value, whatever their length (a short one redacts some noise too,
    which beats leaking it)."""
    if value:
        _extra_secrets.add(value)


def register_config_secrets(jam: Any) -> None:
    """Every secret a loaded configuration holds: operator tokens, the tokens seeded as service
    delegates, and `token_hmac_key`. Called by every command that loads the config."""
    for token in getattr(jam, "allowed_tokens", None) or ():
        register_secret(token)
    for tokens in (getattr(jam, "service_delegates", None) or {}).values():
        for token in tokens:
            register_secret(token)
    key = getattr(jam, "token_hmac_key", None)
    if key:
        register_secret(key)


def redact(text: str) -> str:
    text = TOKEN_SHAPE.sub(REDACTED, text)
    text = BEARER_SHAPE.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in _extra_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_values(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(v) for v in value]
    return value


def redact_processor(_logger: Any, _name: str,
                     event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: _redact_values(v) for k, v in event.items()}


class RedactingFilter(logging.Filter):
    """For stdlib loggers (uvicorn, alembic): redact the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


_configured = False


def configure_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # we log requests ourselves
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.add_log_level,
            redact_processor,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def set_log_level(level: str) -> None:
    """Raise or lower the threshold after `configure_logging` (the admin commands log only
    warnings unless `--verbose`: their audit events are in the audit log already)."""
    logging.getLogger().setLevel(level)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)))


def get_logger(name: str = "jamhost") -> Any:
    return structlog.get_logger(name)


# -- metrics -------------------------------------------------------------------------------

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("jamhost_http_requests_total", "HTTP requests",
                   ["route", "method", "status_class"], registry=REGISTRY)
LATENCY = Histogram("jamhost_http_request_duration_seconds", "HTTP request latency",
                    ["route", "method"], registry=REGISTRY,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
REJECTS = Counter("jamhost_rejects_total", "Refused requests by reason (SPEC code)",
                  ["code"], registry=REGISTRY)
PACKAGES = Counter("jamhost_packages_total", "Package lifecycle transitions",
                   ["status", "service"], registry=REGISTRY)
PACKAGE_SECONDS = Histogram("jamhost_package_seconds", "Submit-to-final latency",
                            ["status"], registry=REGISTRY,
                            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300))
GAS_USED = Counter("jamhost_pvm_gas_used_total", "PVM gas used", ["phase"], registry=REGISTRY)
# Set at scrape time from the store's global pending counter (pending + refining packages).
# In multiprocess mode the most recent scrape's value wins: it is one global number.
QUEUE_DEPTH = Gauge("jamhost_queue_depth", "Packages not yet finished (pending or refining)",
                    registry=REGISTRY, multiprocess_mode="mostrecent")

# The fair scheduler's view (tenancy/fairness.py), also set at scrape time: the label sets are
# fixed (`state` is queued or running), never per tenant.
QUEUE_STATE = Gauge("jamhost_queue_packages", "Unfinished packages by state (queued: not yet "
                    "claimed; running: claimed by a worker)", ["state"], registry=REGISTRY,
                    multiprocess_mode="mostrecent")
BUSY_ACCOUNTS = Gauge("jamhost_queue_busy_accounts", "Accounts with unfinished packages",
                      registry=REGISTRY, multiprocess_mode="mostrecent")
QUEUE_WAIT = Histogram("jamhost_queue_wait_seconds", "Submit to first claim by a worker",
                       registry=REGISTRY,
                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))


class ServiceLabel:
    """`none`: every service is `all`. `bounded`: the first 50 services seen keep their id,
    every later one is `other`, so the label can never grow without bound."""

    LIMIT = 50

    def __init__(self, mode: str = "none") -> None:
        self.mode = mode
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, service_id: int | None) -> str:
        if self.mode != "bounded" or service_id is None:
            return "all"
        with self._lock:
            if service_id in self._seen:
                return str(service_id)
            if len(self._seen) < self.LIMIT:
                self._seen.add(service_id)
                return str(service_id)
        return "other"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class _CappedServiceLabel:
    """Multiprocess mode merges the series of every process, and each process picked its own
    first 50 services: fold everything past the 50 lowest ids into `other` at collection."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Metric]:
        families = list(self.inner.collect())
        ids = sorted({int(s.labels["service"]) for m in families for s in m.samples
                      if s.labels.get("service", "").isdigit()})
        keep = {str(i) for i in ids[:ServiceLabel.LIMIT]}
        for m in families:
            merged: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
            for smp in m.samples:
                labels = dict(smp.labels)
                if labels.get("service", "other") not in keep | {"all", "other"}:
                    labels["service"] = "other"
                key = (smp.name, tuple(sorted(labels.items())))
                prev = merged.get(key)
                merged[key] = smp._replace(labels=labels, value=smp.value + (
                    prev.value if prev is not None else 0.0))
            m.samples = list(merged.values())
            yield m


def metrics_payload() -> tuple[bytes, str]:
    """The exposition of this process, or of all processes sharing PROMETHEUS_MULTIPROC_DIR."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        registry.register(_CappedServiceLabel(multiprocess.MultiProcessCollector(None)))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
