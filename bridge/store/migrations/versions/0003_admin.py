"""The admin API's tables: the audit log, background jobs, the mapping tables each
action was done with, the SLA watch's deadlines, and a dry-run flag and report on
reconciliation runs.

- ``audit_log``: every mutating admin call and every unmasked read (token fingerprint,
  never the token; what, when, outcome).
- ``jobs``: a replay by filter and the like, followed with ``GET /api/v1/jobs/{id}``.
- ``mapping_versions``: the effective mapping tables by their hash; events and dead
  letters carry that hash, so a replay can use the tables of the time.
- ``sla_deadlines``: one row per referral and deadline kind (signing, answer, reply),
  kept by the SLA watch, with the state it last logged (ok, at_risk, breached, met).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the types: a migration must not change when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        _ts("at"),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("detail", JSON, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
    )
    op.create_table(
        "mapping_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("tables", JSON, nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "sla_deadlines",
        sa.Column("referral_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("system", sa.String(32), nullable=False),
        _ts("due_at"),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("changed_at"),
    )
    op.create_index("ix_sla_deadlines_state", "sla_deadlines", ["state", "due_at"])
    op.add_column(
        "reconciliation_runs",
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("reconciliation_runs", sa.Column("report", JSON))


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_runs") as batch:
        batch.drop_column("report")
        batch.drop_column("dry_run")
    op.drop_index("ix_sla_deadlines_state", table_name="sla_deadlines")
    op.drop_table("sla_deadlines")
    op.drop_table("mapping_versions")
    op.drop_table("jobs")
    op.drop_table("audit_log")
