"""Initial schema: records and versions, identifiers, blocking keys, persons, links,
review tasks, not-duplicate decisions and the event log.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("seq", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("subjects", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event")),
    )
    op.create_table(
        "person",
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("trust", sa.String(length=12), nullable=False),
        sa.Column("document_checked", sa.Boolean(), nullable=False),
        sa.Column("replaced_by", sa.String(length=16), nullable=True),
        sa.Column("flags", sa.String(length=200), nullable=False),
        sa.Column("golden", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["replaced_by"], ["person.mpi_id"], name=op.f("fk_person_replaced_by_person")
        ),
        sa.PrimaryKeyConstraint("mpi_id", name=op.f("pk_person")),
    )
    op.create_table(
        "source_record",
        sa.Column("record_id", ID, autoincrement=True, nullable=False),
        sa.Column("authority", sa.String(length=100), nullable=False),
        sa.Column("local_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("birth_name", sa.String(length=200), nullable=True),
        sa.Column("given_names", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.String(length=200), nullable=True),
        sa.Column("sex", sa.String(length=200), nullable=True),
        sa.Column("national_id", sa.String(length=200), nullable=True),
        sa.Column("street", sa.String(length=200), nullable=True),
        sa.Column("house_number", sa.String(length=200), nullable=True),
        sa.Column("postcode", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("matricule", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_source_record")),
        sa.UniqueConstraint("authority", "local_id", name=op.f("uq_source_record_authority_local_id")),
    )
    op.create_table(
        "blocking_key",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["source_record.record_id"], name=op.f("fk_blocking_key_record_id_source_record")
        ),
        sa.PrimaryKeyConstraint("key", "record_id", name=op.f("pk_blocking_key")),
    )
    op.create_index(op.f("ix_blocking_key_record_id"), "blocking_key", ["record_id"], unique=False)
    op.create_table(
        "event_subject",
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("seq", ID, nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["event.seq"], name=op.f("fk_event_subject_seq_event")),
        sa.PrimaryKeyConstraint("mpi_id", "seq", name=op.f("pk_event_subject")),
    )
    op.create_table(
        "link",
        sa.Column("record_id", ID, nullable=False),
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("provenance", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["mpi_id"], ["person.mpi_id"], name=op.f("fk_link_mpi_id_person")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["source_record.record_id"], name=op.f("fk_link_record_id_source_record")
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_link")),
    )
    op.create_index(op.f("ix_link_mpi_id"), "link", ["mpi_id"], unique=False)
    op.create_table(
        "not_duplicate",
        sa.Column("person_a", sa.String(length=16), nullable=False),
        sa.Column("person_b", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_a"], ["person.mpi_id"], name=op.f("fk_not_duplicate_person_a_person")
        ),
        sa.ForeignKeyConstraint(
            ["person_b"], ["person.mpi_id"], name=op.f("fk_not_duplicate_person_b_person")
        ),
        sa.PrimaryKeyConstraint("person_a", "person_b", name=op.f("pk_not_duplicate")),
    )
    op.create_index(op.f("ix_not_duplicate_person_b"), "not_duplicate", ["person_b"], unique=False)
    op.create_table(
        "record_identifier",
        sa.Column("identifier_id", ID, autoincrement=True, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("raw", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_by", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["source_record.record_id"],
            name=op.f("fk_record_identifier_record_id_source_record"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by"],
            ["record_identifier.identifier_id"],
            name=op.f("fk_record_identifier_replaced_by_record_identifier"),
        ),
        sa.PrimaryKeyConstraint("identifier_id", name=op.f("pk_record_identifier")),
    )
    op.create_index(op.f("ix_record_identifier_record_id"), "record_identifier", ["record_id"], unique=False)
    op.create_index(
        op.f("ix_record_identifier_system_value_active"),
        "record_identifier",
        ["system", "value", "active"],
        unique=False,
    )
    op.create_table(
        "record_version",
        sa.Column("record_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("birth_name", sa.String(length=200), nullable=True),
        sa.Column("given_names", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.String(length=200), nullable=True),
        sa.Column("sex", sa.String(length=200), nullable=True),
        sa.Column("national_id", sa.String(length=200), nullable=True),
        sa.Column("street", sa.String(length=200), nullable=True),
        sa.Column("house_number", sa.String(length=200), nullable=True),
        sa.Column("postcode", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("matricule", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["source_record.record_id"], name=op.f("fk_record_version_record_id_source_record")
        ),
        sa.PrimaryKeyConstraint("record_id", "version", name=op.f("pk_record_version")),
    )
    op.create_table(
        "review_task",
        sa.Column("task_id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("mpi_id", sa.String(length=16), nullable=False),
        sa.Column("candidate_mpi_id", sa.String(length=16), nullable=False),
        sa.Column("candidate_record_id", ID, nullable=True),
        sa.Column("match_probability", sa.Double(), nullable=False),
        sa.Column("match_weight", sa.Double(), nullable=False),
        sa.Column("comparisons", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["candidate_mpi_id"], ["person.mpi_id"], name=op.f("fk_review_task_candidate_mpi_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["candidate_record_id"],
            ["source_record.record_id"],
            name=op.f("fk_review_task_candidate_record_id_source_record"),
        ),
        sa.ForeignKeyConstraint(["mpi_id"], ["person.mpi_id"], name=op.f("fk_review_task_mpi_id_person")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["source_record.record_id"], name=op.f("fk_review_task_record_id_source_record")
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_review_task")),
    )
    op.create_index(
        op.f("ix_review_task_candidate_mpi_id"), "review_task", ["candidate_mpi_id"], unique=False
    )
    op.create_index(op.f("ix_review_task_mpi_id"), "review_task", ["mpi_id"], unique=False)
    op.create_index(op.f("ix_review_task_status_task_id"), "review_task", ["status", "task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_review_task_status_task_id"), table_name="review_task")
    op.drop_index(op.f("ix_review_task_mpi_id"), table_name="review_task")
    op.drop_index(op.f("ix_review_task_candidate_mpi_id"), table_name="review_task")
    op.drop_table("review_task")
    op.drop_table("record_version")
    op.drop_index(op.f("ix_record_identifier_system_value_active"), table_name="record_identifier")
    op.drop_index(op.f("ix_record_identifier_record_id"), table_name="record_identifier")
    op.drop_table("record_identifier")
    op.drop_index(op.f("ix_not_duplicate_person_b"), table_name="not_duplicate")
    op.drop_table("not_duplicate")
    op.drop_index(op.f("ix_link_mpi_id"), table_name="link")
    op.drop_table("link")
    op.drop_table("event_subject")
    op.drop_index(op.f("ix_blocking_key_record_id"), table_name="blocking_key")
    op.drop_table("blocking_key")
    op.drop_table("source_record")
    op.drop_table("person")
    op.drop_table("event")
