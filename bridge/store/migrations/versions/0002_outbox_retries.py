"""Outbox retries: attempts and the time of the next attempt of each message.

A message whose publish failed waits until ``next_attempt_at`` (``NULL``: due now)
and is left out of the pending set until then, so it never holds up the messages
behind it. The pending index takes the pending query's own order (early warning
first, then oldest) and ``next_attempt_at``, so the query sorts nothing and skips
rows in back-off from the index alone; the ``published_at`` index, which the pending
query must not pick, covers published rows only (the retention's purge).

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PENDING = sa.text("published_at IS NULL")
_PUBLISHED = sa.text("published_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("outbox", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("outbox", sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        [sa.text("early_warning DESC"), "id", "next_attempt_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        sqlite_where=_PUBLISHED,
        postgresql_where=_PUBLISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["early_warning", "id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
