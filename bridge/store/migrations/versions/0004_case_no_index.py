"""An index on the ``case_no`` column (the union hotline's case number) of each
referral: the admin API finds a referral by `<system>:<case number>` (the number people
read out on the phone) with an index read instead of a scan of the ledger. 0005
replaces both with ``referral_numbers``, for every system's numbers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_referrals_case_no", "referrals", ["case_no"])


def downgrade() -> None:
    op.drop_index("ix_referrals_case_no", table_name="referrals")
