"""A continuation remembers the request that took its page, which may resend it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("query_continuation", sa.Column("taken_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("query_continuation", "taken_by")
