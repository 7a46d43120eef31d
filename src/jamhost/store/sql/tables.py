"""SQLAlchemy Core schema shared by SQLite and PostgreSQL (Alembic migrates it).

Every tenant-owned row carries `service_id`, and every index used for listing leads with it,
so a scoped query never scans another tenant's rows.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for 1M+ rows.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Hash = sa.LargeBinary(32)

meta = sa.Table(
    "jam_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Atomic counters (global pending packages, next service id): one row each, updated with a
# conditional UPDATE so concurrent writers serialize on the row lock.
counters = sa.Table(
    "jam_counters", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

accounts = sa.Table(
    "jam_accounts", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

tokens = sa.Table(
    "jam_tokens", metadata,
    sa.Column("accessor", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("jam_accounts.id"), nullable=False),
    sa.Column("token_hash", Hash, nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index("ix_jam_tokens_account", "account_id"),
)

services = sa.Table(
    "jam_services", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("code_hash", Hash, nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("min_item_gas", sa.BigInteger, nullable=False),
    sa.Column("min_memo_gas", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("quota_pending_packages", sa.BigInteger, nullable=True),
    sa.Column("quota_storage_bytes", sa.BigInteger, nullable=True),
    sa.Column("quota_gas_per_hour", sa.BigInteger, nullable=True),
    sa.Column("pending_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("storage_used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("gas_window", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("gas_used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("root", Hash, nullable=False),
    sa.Column("receipt_seq", sa.BigInteger, nullable=False, server_default="0"),
    # GP a_i and a_o of the service's state (storage and lookup requests), kept exact by
    # every apply so the threshold balance needs no scan.
    sa.Column("state_items", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("state_octets", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_yield", Hash, nullable=True),
    sa.Index("ix_jam_services_owner", "owner"),
)

# When a worker last claimed one of a service's packages: the round robin over an account's
# services (tenancy/fairness.py) takes the least recently served one first (no row: never,
# 0). A table of its own, written only by claims, each holding the service's account row:
# a claim then never waits for a service row, which a finish holds through its apply
# before it takes the account row (the lock order: store/sql/claims.py, finish_package).
# No foreign key: one would make the claim's write lock the service row too.
service_claims = sa.Table(
    "jam_service_claims", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("last_claimed", sa.BigInteger, nullable=False),
)

# One row per owner (an account id with owner_is_account): the per-account limits and the
# fair scheduler's state, each kept exact by conditional UPDATEs in the transactions that
# change it (tenancy/fairness.py has the rules).
account_usage = sa.Table(
    "jam_account_usage", metadata,
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("services", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("pending", sa.BigInteger, nullable=False, server_default="0"),  # not finished
    sa.Column("queued", sa.BigInteger, nullable=False, server_default="0"),  # not yet claimed
    sa.Column("running", sa.BigInteger, nullable=False, server_default="0"),  # claimed
    sa.Column("vtime", sa.BigInteger, nullable=False, server_default="0"),  # gas / weight
    sa.Index("ix_jam_account_usage_vtime", "vtime"),
)

delegates = sa.Table(
    "jam_service_delegates", metadata,
    sa.Column("id", SeqType, primary_key=True, autoincrement=True),
    sa.Column("service_id", sa.BigInteger, sa.ForeignKey("jam_services.service_id"),
              nullable=False),
    sa.Column("token_hash", Hash, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.UniqueConstraint("service_id", "token_hash", name="uq_jam_delegate"),
    sa.Index("ix_jam_delegates_token", "token_hash"),
)

# Blobs are stored once by hash; who may see one is decided by `jam_preimages` rows alone.
blobs = sa.Table(
    "jam_blobs", metadata,
    sa.Column("hash", Hash, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# service_id 0 means "unscoped" (an operator upload); runtime service ids start at 65536.
preimages = sa.Table(
    "jam_preimages", metadata,
    sa.Column("hash", Hash, primary_key=True),
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("media_type", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

packages = sa.Table(
    "jam_packages", metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("id", Hash, nullable=False, unique=True),
    sa.Column("service_id", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("refine_gas", sa.BigInteger, nullable=False),
    sa.Column("accumulate_gas", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("report_hash", Hash, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(80), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("started_at", sa.BigInteger, nullable=True),  # the latest claim
    sa.Index("ix_jam_packages_service_seq", "service_id", "seq"),
    sa.Index("ix_jam_packages_service_status_seq", "service_id", "status", "seq"),
    sa.Index("ix_jam_packages_status_seq", "status", "seq"),
)

reports = sa.Table(
    "jam_reports", metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("package_id", Hash, nullable=False, unique=True),
    sa.Column("service_id", sa.BigInteger, nullable=False),
    sa.Column("report_hash", Hash, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("logs", sa.Text, nullable=True),  # refine's log lines, JSON, bounded
    sa.Index("ix_jam_reports_service_seq", "service_id", "seq"),
)

attestations = sa.Table(
    "jam_attestations", metadata,
    sa.Column("package_id", Hash, primary_key=True),
    sa.Column("attestor", Hash, primary_key=True),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("engine_version", sa.String(64), nullable=False),
    sa.Column("report_hash", Hash, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

receipts = sa.Table(
    "jam_receipts", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("prev_root", Hash, nullable=False),
    sa.Column("new_root", Hash, nullable=False),
    sa.Column("entry_type", sa.String(16), nullable=False),
    sa.Column("hash", Hash, nullable=False),
    sa.Column("processed_at", sa.BigInteger, nullable=False),
    sa.Index("ix_jam_receipts_hash", "hash"),
)

storage = sa.Table(
    "jam_storage", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("key", sa.LargeBinary, primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

# GP l: preimage lookup requests (solicit/forget), per service.
lookup_requests = sa.Table(
    "jam_lookup_requests", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", Hash, primary_key=True),
    sa.Column("length", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("slots", sa.String(64), nullable=False),  # comma-separated timeslots (0..3)
)

# Deferred transfers waiting for the destination's next accumulate.
transfers = sa.Table(
    "jam_transfers", metadata,
    sa.Column("id", SeqType, primary_key=True, autoincrement=True),
    sa.Column("source", sa.BigInteger, nullable=False),
    sa.Column("destination", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("memo", sa.LargeBinary, nullable=False),
    sa.Column("gas", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_jam_transfers_destination", "destination", "id"),
)

# Exported segments kept for imports (GP §14.3's D³L): one set per applied package of the
# exporting service, found by its segments root or its package hash until it expires; its
# rows are s ++ P(s) (idx < count: the exports, then the paged-proof pages), W_G octets each,
# counted in the service's storage_used (domain/model.export_set_bytes).
export_sets = sa.Table(
    "jam_export_sets", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("package_hash", Hash, primary_key=True),
    sa.Column("segments_root", Hash, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_jam_export_sets_root", "service_id", "segments_root"),
    sa.Index("ix_jam_export_sets_expires", "expires_at"),
)

segments = sa.Table(
    "jam_segments", metadata,
    sa.Column("service_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("package_hash", Hash, primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# What each accumulation did (SPEC §4): of a package, or of queued inputs alone (package_id
# NULL). Lists are JSON text; logs are bounded by runtime.jam.max_log_bytes_per_invocation.
accumulations = sa.Table(
    "jam_accumulations", metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("service_id", sa.BigInteger, nullable=False),
    sa.Column("package_id", Hash, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("gas_limit", sa.BigInteger, nullable=False),
    sa.Column("gas_used", sa.BigInteger, nullable=False),
    sa.Column("inputs", sa.BigInteger, nullable=False),
    sa.Column("yield_hash", Hash, nullable=True),
    sa.Column("output", sa.LargeBinary, nullable=True),
    sa.Column("logs", sa.Text, nullable=False),
    sa.Column("logs_dropped", sa.BigInteger, nullable=False),
    sa.Column("transfers", sa.Text, nullable=False),
    sa.Column("transfers_in", sa.Text, nullable=False),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("ejected", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_jam_accumulations_package", "package_id"),
    sa.Index("ix_jam_accumulations_service_seq", "service_id", "seq"),
)

# Security events (token created/revoked, delegate granted/removed, quota changed, service
# created/upgraded, authorization denials). Actors are public handles, never tokens.
audit = sa.Table(
    "jam_audit", metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("service_id", sa.BigInteger, nullable=True),
    sa.Column("target", sa.String(200), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_jam_audit_action_seq", "action", "seq"),
)
