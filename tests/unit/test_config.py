"""Settings (SPEC §2): defaults, the TOML file, environment overrides, refusals naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jamhost.config import ConfigError, JamSettings, Quota, load_settings

P = "JAMHOST_RUNTIME__JAM__"


def load(tmp_path: Path, toml: str | None = None, **env: str):  # type: ignore[no-untyped-def]
    path = None
    if toml is not None:
        path = tmp_path / "jamhost.toml"
        path.write_text(toml)
    return load_settings(path, environ=env).jam


def refused(tmp_path: Path, toml: str | None = None, **env: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, toml, **env)
    return str(exc.value)


def test_defaults_are_the_spec_table(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.store == "sqlite"
    assert s.sqlite_path == "./jamhost.db"
    assert s.pg_dsn is None
    assert s.authz_enabled is True
    assert s.owner_is_account is True
    assert s.allowed_tokens == []
    assert s.service_delegates == {}
    assert s.token_hmac_key is None
    assert s.rate_limit_per_minute == 600
    assert s.service_rate_limit_per_minute == 1200
    assert s.rate_limit_storage == "memory://"
    assert s.max_preimage_bytes == 10485760
    assert s.max_package_bytes == 13791360
    assert s.max_pending_packages == 10000
    assert s.default_quota == Quota(pending_packages=100, storage_bytes=104857600,
                                    gas_per_hour=10000000000)
    assert s.attestors == 3
    assert s.attestation_threshold == 2
    assert s.workers == 2
    assert s.metrics_service_label == "none"
    assert s.pvm_engine == "auto"
    assert s.max_workers_per_account is None and s.workers_per_account == 1
    assert s.worker_lease_seconds is None
    assert s.account_weights == {}
    # Every SPEC §2 key exists; the project's own limits are the only others.
    spec = {
        "store", "sqlite_path", "pg_dsn", "authz_enabled", "owner_is_account",
        "allowed_tokens", "service_delegates", "token_hmac_key", "rate_limit_per_minute",
        "service_rate_limit_per_minute", "rate_limit_storage", "max_preimage_bytes",
        "max_package_bytes", "max_pending_packages", "default_quota", "attestors",
        "attestation_threshold", "workers", "metrics_service_label", "pvm_engine",
        "max_services_per_account", "max_pending_per_account",
        "account_rate_limit_per_minute", "max_workers_per_account",
        "initial_service_balance", "max_log_bytes_per_invocation", "worker_lease_seconds",
        "max_queued_transfers_per_service", "max_queued_transfer_gas_per_service"}
    assert spec <= set(JamSettings.model_fields)
    assert "account_weights" in JamSettings.model_fields  # the project's: fair-share plans
    # the project's: exported segments' retention (GP: 28 days) and runtime-wide authorizers
    assert s.segment_retention_seconds == 28 * 24 * 3600
    assert s.shared_authorizers == []
    assert s.sqlite_synchronous == "full"  # the project's: durability of the SQLite store


def test_sqlite_synchronous_is_full_or_normal(tmp_path: Path) -> None:
    assert load(tmp_path, **{P + "SQLITE_SYNCHRONOUS": "normal"}).sqlite_synchronous == "normal"
    assert "sqlite_synchronous" in refused(tmp_path, "[runtime.jam]\nsqlite_synchronous = 'off'\n")


def test_shared_authorizers_are_service_ids(tmp_path: Path) -> None:
    assert load(tmp_path, "[runtime.jam]\nshared_authorizers = [65536]\n"
                ).shared_authorizers == [65536]
    assert "shared_authorizers" in refused(tmp_path, "[runtime.jam]\nshared_authorizers = [-1]\n")
    assert "segment_retention_seconds" in refused(
        tmp_path, "[runtime.jam]\nsegment_retention_seconds = 0\n")


def test_workers_per_account_is_half_the_workers_at_least_one(tmp_path: Path) -> None:
    assert JamSettings(workers=4).workers_per_account == 2
    assert JamSettings(workers=3).workers_per_account == 1
    assert JamSettings(workers=0).workers_per_account == 1
    assert JamSettings(workers=4, max_workers_per_account=3).workers_per_account == 3


def test_toml_file(tmp_path: Path) -> None:
    s = load(tmp_path, """
[runtime.jam]
store = "postgres"
pg_dsn = "postgresql://u@db:5432/jam"
authz_enabled = false
owner_is_account = false
allowed_tokens = ["op-1", "op-2"]
service_delegates = { "65536" = ["tok-a"], "70000" = [] }
token_hmac_key = "k3y"
rate_limit_per_minute = 0
service_rate_limit_per_minute = 5
rate_limit_storage = "redis://127.0.0.1:6379/2"
max_preimage_bytes = 1024
max_package_bytes = 2048
max_pending_packages = 7
default_quota = { pending_packages = 3, storage_bytes = 4096, gas_per_hour = 5 }
attestors = 5
attestation_threshold = 5
workers = 0
metrics_service_label = "bounded"
""")
    assert s.store == "postgres" and s.pg_dsn == "postgresql://u@db:5432/jam"
    assert (s.authz_enabled, s.owner_is_account) == (False, False)
    assert s.allowed_tokens == ["op-1", "op-2"]
    assert s.service_delegates == {"65536": ["tok-a"], "70000": []}
    assert s.token_hmac_key == "k3y"
    assert (s.rate_limit_per_minute, s.service_rate_limit_per_minute) == (0, 5)
    assert s.rate_limit_storage == "redis://127.0.0.1:6379/2"
    assert (s.max_preimage_bytes, s.max_package_bytes, s.max_pending_packages) == (1024, 2048, 7)
    assert s.default_quota == Quota(pending_packages=3, storage_bytes=4096, gas_per_hour=5)
    assert (s.attestors, s.attestation_threshold, s.workers) == (5, 5, 0)
    assert s.metrics_service_label == "bounded"


def test_partial_default_quota_keeps_other_defaults(tmp_path: Path) -> None:
    s = load(tmp_path, "[runtime.jam]\ndefault_quota = { storage_bytes = 10 }\n")
    assert s.default_quota == Quota(pending_packages=100, storage_bytes=10,
                                    gas_per_hour=10000000000)


def test_config_path_from_jamhost_config(tmp_path: Path) -> None:
    path = tmp_path / "via-env.toml"
    path.write_text('[runtime.jam]\nsqlite_path = "/data/j.db"\n')
    assert load_settings(None, environ={"JAMHOST_CONFIG": str(path)}).jam.sqlite_path == \
        "/data/j.db"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    toml = '[runtime.jam]\nstore = "memory"\nworkers = 4\nallowed_tokens = ["from-file"]\n'
    s = load(tmp_path, toml, **{
        P + "WORKERS": "1",
        P + "ALLOWED_TOKENS": '["a", "b"]',
        P + "SERVICE_DELEGATES": '{"65537": ["t1", "t2"]}',
        P + "DEFAULT_QUOTA": '{"pending_packages": 9, "gas_per_hour": 8}',
        P + "AUTHZ_ENABLED": "false",
        P + "OWNER_IS_ACCOUNT": "true",
        P + "MAX_PENDING_PACKAGES": "12",
        P + "METRICS_SERVICE_LABEL": "bounded",
        P + "SQLITE_PATH": "/tmp/x.db",
    })
    assert s.store == "memory"  # from the file, untouched
    assert s.workers == 1
    assert s.allowed_tokens == ["a", "b"]
    assert s.service_delegates == {"65537": ["t1", "t2"]}
    assert s.default_quota == Quota(pending_packages=9, storage_bytes=104857600, gas_per_hour=8)
    assert s.authz_enabled is False and s.owner_is_account is True
    assert s.max_pending_packages == 12
    assert s.metrics_service_label == "bounded"
    assert s.sqlite_path == "/tmp/x.db"


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("false", False), ("1", True),
                                            ("0", False), ("True", True), ("FALSE", False)])
def test_environment_booleans(tmp_path: Path, raw: str, value: bool) -> None:
    assert load(tmp_path, **{P + "AUTHZ_ENABLED": raw}).authz_enabled is value


def test_database_url_gives_pg_dsn(tmp_path: Path) -> None:
    s = load(tmp_path, **{"DATABASE_URL": "postgresql://u@h/db", P + "STORE": "postgres"})
    assert (s.store, s.pg_dsn) == ("postgres", "postgresql://u@h/db")
    # The jamhost variable is the more specific one and wins.
    s = load(tmp_path, **{"DATABASE_URL": "postgresql://u@h/db",
                          P + "PG_DSN": "postgresql://v@w/other"})
    assert s.pg_dsn == "postgresql://v@w/other"
    assert load(tmp_path, DATABASE_URL="").pg_dsn is None


def test_unknown_keys_in_the_file_are_refused_by_name(tmp_path: Path) -> None:
    msg = refused(tmp_path, '[runtime.jam]\nstore = "memory"\nauthz_enabeld = false\n')
    assert "runtime.jam.authz_enabeld" in msg and "unknown" in msg
    msg = refused(tmp_path, "[runtime.jam]\ndefault_quota = { pending = 1 }\n")
    assert "runtime.jam.default_quota.pending" in msg and "unknown" in msg
    assert "runtime.jamm" in refused(tmp_path, "[runtime.jamm]\nstore = 'memory'\n")
    assert "'server'" in refused(tmp_path, "[server]\nport = 1\n")


def test_unknown_keys_in_the_environment_are_refused_by_name(tmp_path: Path) -> None:
    msg = refused(tmp_path, **{P + "ALLOWED_TOKEN": '["x"]'})
    assert "runtime.jam.allowed_token" in msg and P + "ALLOWED_TOKEN" in msg
    msg = refused(tmp_path, **{P + "DEFAULT_QUOTA__PENDING_PACKAGES": "5"})
    assert "runtime.jam.default_quota__pending_packages" in msg
    msg = refused(tmp_path, **{P + "DEFAULT_QUOTA": '{"gas": 5}'})
    assert "runtime.jam.default_quota.gas" in msg
    # Other variables, even JAMHOST_ ones, are not config keys.
    assert load(tmp_path, JAMHOST_URL="http://x", JAMHOST_TOKEN="t").store == "sqlite"


@pytest.mark.parametrize(("toml", "env", "key"), [
    ('store = "mysql"', {}, "runtime.jam.store"),
    ("rate_limit_per_minute = -1", {}, "runtime.jam.rate_limit_per_minute"),
    ('workers = "many"', {}, "runtime.jam.workers"),
    ("max_preimage_bytes = 0", {}, "runtime.jam.max_preimage_bytes"),
    ('rate_limit_storage = "memcached://x"', {}, "runtime.jam.rate_limit_storage"),
    ('metrics_service_label = "all"', {}, "runtime.jam.metrics_service_label"),
    ('service_delegates = { "abc" = ["t"] }', {}, "runtime.jam.service_delegates"),
    ('service_delegates = { "4294967296" = ["t"] }', {}, "runtime.jam.service_delegates"),
    ("attestors = 0", {}, "runtime.jam.attestors"),
    ("default_quota = { pending_packages = -5 }", {},
     "runtime.jam.default_quota.pending_packages"),
    ("attestors = 2\nattestation_threshold = 3", {}, "attestation_threshold"),
    ('store = "postgres"', {}, "pg_dsn"),
    ("", {P + "AUTHZ_ENABLED": "maybe"}, "runtime.jam.authz_enabled"),
    ("", {P + "MAX_PENDING_PACKAGES": "ten"}, "runtime.jam.max_pending_packages"),
    ("", {P + "ALLOWED_TOKENS": "op-token"}, "runtime.jam.allowed_tokens"),
    ("", {P + "ALLOWED_TOKENS": '["unclosed"'}, "runtime.jam.allowed_tokens"),
    ("", {P + "DEFAULT_QUOTA": '{"storage_bytes": "lots"}'},
     "runtime.jam.default_quota.storage_bytes"),
])
def test_invalid_values_are_refused_by_name(tmp_path: Path, toml: str, env: dict[str, str],
                                           key: str) -> None:
    assert key in refused(tmp_path, "[runtime.jam]\n" + toml + "\n", **env)


def test_bad_files_are_refused(tmp_path: Path) -> None:
    assert "does not exist" in str(pytest.raises(
        ConfigError, load_settings, tmp_path / "missing.toml", {}).value)
    assert "not valid TOML" in refused(tmp_path, "[runtime.jam\nstore =")
    assert "runtime.jam" in refused(tmp_path, "[runtime]\njam = 5\n")


def jamhost_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("jamhost")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "jamhost.cli.main"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("JAMHOST_") and k != "DATABASE_URL"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=60)


@pytest.mark.parametrize(("toml", "needle"), [
    ('[runtime.jam]\nstore = "sqlite"\nsqlite_pth = "x.db"\n', "runtime.jam.sqlite_pth"),
    ("[runtime.jam]\nmax_pending_packages = -3\n", "runtime.jam.max_pending_packages"),
    ("[runtime.jam\n", "not valid TOML"),
])
def test_cli_exits_2_with_a_clear_message(tmp_path: Path, toml: str, needle: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    out = jamhost_cli("migrate", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("config error: ")
    assert needle in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not (tmp_path / "jamhost.db").exists() and not (tmp_path / "x.db").exists()


def test_cli_exits_2_on_a_missing_config_file(tmp_path: Path) -> None:
    out = jamhost_cli("migrate", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert out.returncode == 2
    assert "nope.toml" in out.stderr and "does not exist" in out.stderr


def test_account_weights_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[runtime.jam]\naccount_weights = { "acc_1" = 4 }\n')
    assert load_settings(path, environ={}).jam.account_weights == {"acc_1": 4}
    path.write_text('[runtime.jam]\naccount_weights = { "acc_1" = 0 }\n')
    with pytest.raises(ConfigError, match="account_weights"):
        load_settings(path, environ={})
