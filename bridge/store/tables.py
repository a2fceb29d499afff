"""The schema as SQLAlchemy Core tables, and the few dialect seams.

The migrations in ``migrations/versions`` are the authority on the schema;
these tables mirror them for queries, and a test checks that the two agree.
Every time column is :class:`UTCDateTime` so that SQLite, which keeps no time
zone, hands back aware UTC datetimes like PostgreSQL does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from .sqlite import fast


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive datetimes are refused on the way in.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text in one fixed
    format, so comparisons and ``ORDER BY`` on it stay correct.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store takes aware datetimes only (got a naive one)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("referral_id", sa.String(200), primary_key=True),
    sa.Column("origin_system", sa.String(32), nullable=False),
    # The partner the referral goes to (None: not known, e.g. an intake not forwarded).
    sa.Column("target", sa.String(32)),
    sa.Column("ids", JSONType, nullable=False),
    sa.Column("numbers", JSONType, nullable=False),
    sa.Column("early_warning", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("last_snapshot", JSONType),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_referrals_state", "state"),
    sa.Index("ix_referrals_created_at", "created_at"),
    sa.Index("ix_referrals_origin_target", "origin_system", "target"),
)

# ``referrals.numbers`` again, one row per (referral, system), written in the same
# transaction as the referral: finding a referral by a number (of one system, or of any)
# is an index read whatever the system. No foreign key, like the other per-referral
# tables; nothing deletes referrals, and a lookup joins ``referrals``.
referral_numbers = sa.Table(
    "referral_numbers",
    metadata,
    sa.Column("referral_id", sa.String(200), primary_key=True),
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("number", sa.String(200), nullable=False),
    sa.Index("ix_referral_numbers_number", "number"),
    sa.Index("ix_referral_numbers_system_number", "system", "number"),
)

source_versions = sa.Table(
    "source_versions",
    metadata,
    sa.Column("referral_id", sa.String(200), primary_key=True),
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("referral_id", sa.String(200), primary_key=True),
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("detail", JSONType, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

feed_positions = sa.Table(
    "feed_positions",
    metadata,
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("feed", sa.String(100), primary_key=True),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

feed_seen = sa.Table(
    "feed_seen",
    metadata,
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("native_id", sa.String(200), primary_key=True),
    sa.Column("content_hash", sa.String(128), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

created_index = sa.Table(
    "created_index",
    metadata,
    sa.Column("system", sa.String(32), primary_key=True),
    sa.Column("origin_ref", sa.String(200), primary_key=True),
    sa.Column("native_id", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("referral_id", sa.String(200), nullable=False),
    sa.Column("routing_key", sa.String(255), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("headers", JSONType, nullable=False),
    sa.Column("early_warning", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),  # NULL: due now (see outbox.pending)
    sa.Index(
        "ix_outbox_published_at",
        "published_at",
        sqlite_where=sa.text("published_at IS NOT NULL"),
        postgresql_where=sa.text("published_at IS NOT NULL"),
    ),
)
# In the pending query's own order, so that it reads only the rows it returns plus the
# ones in back-off it skips (judged from the index alone), and sorts nothing.
sa.Index(
    "ix_outbox_pending",
    outbox.c.early_warning.desc(),
    outbox.c.id,
    outbox.c.next_attempt_at,
    sqlite_where=sa.text("published_at IS NULL"),
    postgresql_where=sa.text("published_at IS NULL"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("referral_id", sa.String(200)),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("field", sa.String(200)),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_dead_letters_status", "status", "id"),
    sa.Index("ix_dead_letters_referral_id", "referral_id"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

reconciliation_runs = sa.Table(
    "reconciliation_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("counts", JSONType, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("report", JSONType),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("token", sa.String(32), nullable=False),  # the token's fingerprint
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("operation", sa.String(100), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(200), nullable=False),
    sa.Column("detail", JSONType, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", JSONType, nullable=False),
    sa.Column("total", sa.Integer),
    sa.Column("done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", JSONType, nullable=False),
    sa.Column("created_by", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

mapping_versions = sa.Table(
    "mapping_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("tables", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

sla_deadlines = sa.Table(
    "sla_deadlines",
    metadata,
    sa.Column("referral_id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Index("ix_sla_deadlines_state", "state", "due_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("referral_id", sa.String(200), nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("detail", JSONType, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_events_referral_id", "referral_id", "id"),
)


def insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An ``INSERT`` with ``ON CONFLICT`` support for the connection's dialect.

    Both the SQLite and the PostgreSQL constructs offer ``on_conflict_do_nothing``,
    ``on_conflict_do_update`` and ``excluded`` with the same signatures.
    """
    return dialect_insert(conn.dialect.name, table)


def dialect_insert(name: str, table: sa.Table) -> Any:
    """:func:`insert` for a dialect name (``"sqlite"`` or ``"postgresql"``)."""
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {name!r}")


T = TypeVar("T")


def per_dialect(build: Callable[[str], T]) -> Callable[[AsyncConnection], T]:
    """Build a statement once per dialect (name → statement), then reuse it.

    The hot statements are built once with ``sa.bindparam`` placeholders and
    executed with a parameter dict: SQLAlchemy memoises a statement object's cache
    key and finds its compiled form in the engine's cache, so a call costs no
    statement construction and no cache-key generation. On SQLite the statement is
    also marked for the fast path (see `bridge.store.sqlite.fast`).
    """
    built: dict[str, T] = {}

    def get(conn: AsyncConnection) -> T:
        name = conn.dialect.name
        try:
            return built[name]
        except KeyError:
            stmt = built[name] = build(name)
            if name == "sqlite":
                fast(stmt)
            return stmt

    get.__doc__ = build.__doc__
    return get
