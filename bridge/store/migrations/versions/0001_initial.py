"""Initial schema: ledger, positions, outbox, dead letters, leases, runs, events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("origin_system", sa.String(32), nullable=False),
        sa.Column("ids", JSON, nullable=False),
        sa.Column("case_no", sa.String(100)),
        sa.Column("early_warning", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("last_snapshot", JSON),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_referrals_state", "referrals", ["state"])
    op.create_index("ix_referrals_created_at", "referrals", ["created_at"])

    op.create_table(
        "source_versions",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "actions",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        _ts("at"),
    )
    op.create_table(
        "feed_positions",
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("feed", sa.String(100), primary_key=True),
        sa.Column("position", sa.Text, nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "feed_seen",
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("native_id", sa.String(200), primary_key=True),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "created_index",
        sa.Column("system", sa.String(32), primary_key=True),
        sa.Column("origin_ref", sa.String(200), primary_key=True),
        sa.Column("native_id", sa.String(200), nullable=False),
        _ts("created_at"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("referral_id", sa.String(200), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("early_warning", sa.Boolean, nullable=False),
        _ts("created_at"),
        _ts("published_at", nullable=True),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["early_warning", "id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])

    op.create_table(
        "dead_letters",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("referral_id", sa.String(200)),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("field", sa.String(200)),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_dead_letters_status", "dead_letters", ["status", "id"])
    op.create_index("ix_dead_letters_referral_id", "dead_letters", ["referral_id"])

    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        _ts("expires_at"),
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.Column("counts", JSON, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("referral_id", sa.String(200), nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        _ts("at"),
    )
    op.create_index("ix_events_referral_id", "events", ["referral_id", "id"])


def downgrade() -> None:
    for table in (
        "events",
        "reconciliation_runs",
        "leases",
        "dead_letters",
        "outbox",
        "created_index",
        "feed_seen",
        "feed_positions",
        "actions",
        "source_versions",
        "referrals",
    ):
        op.drop_table(table)
