"""Receipts of received messages are kept for a retention period: an index to find the old ones.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_message_receipt_received_at"), "message_receipt", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_message_receipt_received_at"), table_name="message_receipt")
