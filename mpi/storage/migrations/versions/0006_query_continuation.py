"""Continuations of paged PDQ answers, shared by every server process.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "query_continuation",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("sending_application", sa.Text(), nullable=False),
        sa.Column("sending_facility", sa.Text(), nullable=False),
        sa.Column("query_tag", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("remaining", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_query_continuation")),
    )
    op.create_index(
        op.f("ix_query_continuation_created_at"), "query_continuation", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_query_continuation_created_at"), table_name="query_continuation")
    op.drop_table("query_continuation")
