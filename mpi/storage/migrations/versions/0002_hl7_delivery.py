"""HL7 v2 delivery: receipts of received messages, the outbox of notifications, event-log
cursors, and source records superseded by a merge of their source.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_receipt",
        sa.Column("sending_application", sa.String(length=250), nullable=False),
        sa.Column("sending_facility", sa.String(length=250), nullable=False),
        sa.Column("control_id", sa.String(length=200), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "sending_application", "sending_facility", "control_id", name=op.f("pk_message_receipt")
        ),
    )
    op.create_table(
        "outbound_message",
        sa.Column("message_id", ID, autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("event_seq", ID, nullable=False),
        sa.Column("identifiers", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_outbound_message")),
    )
    op.create_index(
        op.f("ix_outbound_message_status_message_id"),
        "outbound_message",
        ["status", "message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_outbound_message_consumer_mpi_id_message_id"),
        "outbound_message",
        ["consumer", "mpi_id", "message_id"],
        unique=False,
    )
    op.create_table(
        "event_cursor",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("last_seq", ID, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_event_cursor")),
    )
    op.create_table(
        "superseded_record",
        sa.Column("record_id", ID, nullable=False),
        sa.Column("replaced_by", ID, nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["source_record.record_id"],
            name=op.f("fk_superseded_record_record_id_source_record"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by"],
            ["source_record.record_id"],
            name=op.f("fk_superseded_record_replaced_by_source_record"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_superseded_record")),
    )
    op.create_index(
        op.f("ix_superseded_record_replaced_by"), "superseded_record", ["replaced_by"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_superseded_record_replaced_by"), table_name="superseded_record")
    op.drop_table("superseded_record")
    op.drop_table("event_cursor")
    op.drop_index(op.f("ix_outbound_message_consumer_mpi_id_message_id"), table_name="outbound_message")
    op.drop_index(op.f("ix_outbound_message_status_message_id"), table_name="outbound_message")
    op.drop_table("outbound_message")
    op.drop_table("message_receipt")
