"""The access audit trail: every read of patient data, with the persons it showed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("access_id", ID, autoincrement=True, nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=True),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("access_id", name=op.f("pk_access_log")),
    )
    op.create_index(op.f("ix_access_log_actor_access_id"), "access_log", ["actor", "access_id"], unique=False)
    op.create_table(
        "access_subject",
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("access_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["access_id"], ["access_log.access_id"], name=op.f("fk_access_subject_access_id_access_log")
        ),
        sa.PrimaryKeyConstraint("mpi_id", "access_id", name=op.f("pk_access_subject")),
    )


def downgrade() -> None:
    op.drop_table("access_subject")
    op.drop_index(op.f("ix_access_log_actor_access_id"), table_name="access_log")
    op.drop_table("access_log")
