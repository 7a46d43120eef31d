"""Settings: the `runtime.jam.*` keys of SPEC §2, from one TOML file plus the environment.

Precedence, lowest first: defaults, the TOML file (`--config PATH` or `JAMHOST_CONFIG`), then
`JAMHOST_RUNTIME__JAM__<KEY>` variables (and `DATABASE_URL` for `pg_dsn`). Unknown keys, in the
file or in the environment, are refused at start with a message naming the key: a typo in a
security setting must never silently fall back to a default.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "JAMHOST_RUNTIME__JAM__"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class Quota(BaseModel):
    """Per-service resource limits (SPEC §2 `default_quota`)."""

    model_config = ConfigDict(extra="forbid")

    pending_packages: int = Field(100, ge=0)
    storage_bytes: int = Field(104_857_600, ge=0)
    gas_per_hour: int = Field(10_000_000_000, ge=0)


class JamSettings(BaseModel):
    """Every key of the `[runtime.jam]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Literal["memory", "sqlite", "postgres"] = "sqlite"
    sqlite_path: str = "./jamhost.db"
    sqlite_synchronous: Literal["full", "normal"] = "full"
    """SQLite's `synchronous` under WAL: `full` syncs the WAL at every commit (an acknowledged
    write survives a power cut), `normal` only at checkpoints (it survives a process crash;
    a power cut may lose the last commits). docs/operations.md has the decision."""
    pg_dsn: str | None = None
    pg_pool_size: int = Field(10, ge=1, le=1000)
    """PostgreSQL connections one process keeps open; a burst may open as many again."""
    authz_enabled: bool = True
    owner_is_account: bool = True
    allowed_tokens: list[str] = Field(default_factory=list)
    service_delegates: dict[str, list[str]] = Field(default_factory=dict)
    token_hmac_key: str | None = None
    rate_limit_per_minute: int = Field(600, ge=0)
    service_rate_limit_per_minute: int = Field(1200, ge=0)
    rate_limit_storage: str = "memory://"
    max_preimage_bytes: int = Field(10_485_760, ge=1)
    max_package_bytes: int = Field(13_791_360, ge=1)
    max_pending_packages: int = Field(10_000, ge=0)
    default_quota: Quota = Field(default_factory=Quota)
    attestors: int = Field(3, ge=1, le=64)
    attestation_threshold: int = Field(2, ge=1)
    attestor_recheck_gas: int = Field(1_000, ge=0)
    """The second attestor re-refines a package on the other PVM engine with probability
    min(1, this / the gas its first refine used); otherwise it signs the first's report
    (app/attestation.py). 0: never."""
    workers: int = Field(2, ge=0)
    metrics_service_label: Literal["none", "bounded"] = "none"
    pvm_engine: Literal["auto", "native", "python"] = "auto"
    # Per-account limits on top of the per-service ones (SPEC §2): a tenant cannot multiply
    # its budgets by creating services or tokens.
    max_services_per_account: int = Field(100, ge=0)
    max_pending_per_account: int = Field(1_000, ge=0)
    account_rate_limit_per_minute: int = Field(3_000, ge=0)
    max_workers_per_account: int | None = Field(None, ge=1)
    """None: half the workers, at least 1 (see `workers_per_account`)."""
    preempt: bool = True
    """A running package lets another account's run first, nested, at its safe points when
    the fair rule would have served that account first (docs/scheduling.md, "Preemption")."""
    initial_service_balance: int = Field(1_000_000_000, ge=0, lt=2**64)
    max_log_bytes_per_invocation: int = Field(65_536, ge=0)
    account_weights: dict[str, int] = Field(default_factory=dict)
    """Operator weights per account id for the fair scheduler (plans); others weigh 1."""
    # Inputs other services may queue for one service (deferred transfers, GP 0.7.2 §12):
    # how many, and how much gas in total. The sender pays both the amount and the gas; a
    # transfer past either bound answers LOW (docs/security.md, accumulate isolation).
    max_queued_transfers_per_service: int = Field(1_024, ge=0)
    max_queued_transfer_gas_per_service: int = Field(100_000_000, ge=0)
    worker_lease_seconds: float | None = Field(None, gt=0)
    """None: $JAMHOST_WORKER_LEASE_SECONDS, else 120 (see `lease_seconds`)."""
    segment_retention_seconds: int = Field(2_419_200, ge=1)
    """How long a package's exported segments are kept (GP §14.3: 28 days in the D³L)."""
    shared_authorizers: list[int] = Field(default_factory=list)
    """Services whose code any tenant's package may name as its authorizer (the operator's,
    e.g. a null authorizer); their data stays the operator's (tenancy/authz.py)."""

    @field_validator("service_delegates")
    @classmethod
    def _service_ids_are_u32(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in value:
            if not key.isdigit() or int(key) >= 2**32:
                raise ValueError(f"service id {key!r} is not a u32")
        return value

    @field_validator("shared_authorizers")
    @classmethod
    def _authorizers_are_u32(cls, value: list[int]) -> list[int]:
        for sid in value:
            if not 0 <= sid < 2**32:
                raise ValueError(f"service id {sid} is not a u32")
        return value

    @field_validator("account_weights")
    @classmethod
    def _weights_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        for account, weight in value.items():
            if not 1 <= weight <= 1000:
                raise ValueError(f"weight of {account!r} must be between 1 and 1000")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must be memory:// or redis://host:port/db")
        return value

    @property
    def workers_per_account(self) -> int:
        """Packages of one account that may run at once."""
        if self.max_workers_per_account is not None:
            return self.max_workers_per_account
        return max(1, self.workers // 2)

    @property
    def lease_seconds(self) -> float:
        """How long a worker's claim lasts without its heartbeat."""
        if self.worker_lease_seconds is not None:
            return self.worker_lease_seconds
        return float(os.environ.get("JAMHOST_WORKER_LEASE_SECONDS", "120"))

    def model_post_init(self, __context: Any) -> None:
        if self.attestation_threshold > self.attestors:
            raise ValueError("attestation_threshold cannot exceed attestors")
        if self.store == "postgres" and not self.pg_dsn:
            raise ValueError("store = 'postgres' needs pg_dsn (or DATABASE_URL)")


class Settings(BaseModel):
    """The whole file. Only `[runtime.jam]` is defined today."""

    model_config = ConfigDict(frozen=True)

    jam: JamSettings = Field(default_factory=JamSettings)


def _env_value(raw: str) -> Any:
    """Environment values are strings; lists and tables come as JSON (`["a","b"]`)."""
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc}") from None
    return raw


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"runtime"}
    if unknown:
        raise ConfigError(f"unknown config key {sorted(unknown)[0]!r} (only [runtime.jam] exists)")
    runtime = data.get("runtime", {})
    if not isinstance(runtime, dict):
        raise ConfigError("'runtime' must be a table")
    unknown = set(runtime) - {"jam"}
    if unknown:
        raise ConfigError(f"unknown config key 'runtime.{sorted(unknown)[0]}'")
    jam = runtime.get("jam", {})
    if not isinstance(jam, dict):
        raise ConfigError("'runtime.jam' must be a table")
    return dict(jam)


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    known = set(JamSettings.model_fields)
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in known:
            raise ConfigError(f"unknown config key 'runtime.jam.{key}' (from ${name})")
        try:
            values[key] = _env_value(raw)
        except ConfigError as exc:
            raise ConfigError(f"runtime.jam.{key} (from ${name}): {exc}") from None
    return values


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Load and validate settings; raise ConfigError naming the first bad key."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("JAMHOST_CONFIG")
    values: dict[str, Any] = _from_file(Path(path)) if path else {}
    if environ.get("DATABASE_URL") and "pg_dsn" not in values:
        values["pg_dsn"] = environ["DATABASE_URL"]
    values.update(_from_env(environ))
    try:
        return Settings(jam=JamSettings(**values))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        where = f"runtime.jam.{loc}" if loc else "runtime.jam"
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key '{where}'") from None
        raise ConfigError(f"{where}: {first['msg']}") from None
