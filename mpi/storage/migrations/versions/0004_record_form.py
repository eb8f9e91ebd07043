"""The matcher's stored form of each record (record_form).

Candidates of an online registration were standardised again on every call;
their standardised form is now written with the record's blocking keys and read
back with the record. Records written before this revision have no form and are
standardised when scored, as before.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_form",
        sa.Column(
            "record_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("source_record.record_id", name=op.f("fk_record_form_record_id_source_record")),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("form", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_record_form")),
    )


def downgrade() -> None:
    op.drop_table("record_form")
