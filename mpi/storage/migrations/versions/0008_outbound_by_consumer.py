"""A consumer's next pending notification found through an index, whatever others have waiting.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_outbound_message_consumer_status_message_id"


def upgrade() -> None:
    op.create_index(_INDEX, "outbound_message", ["consumer", "status", "message_id"], unique=False)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="outbound_message")
