"""Bulk insert sentinels: audit_log, patients and patient_results take many rows in one statement on SQLite

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("audit_log", "patients", "patient_results")


def upgrade() -> None:
    # plain ALTER TABLE (no batch copy): audit_log keeps its append-only triggers
    for table in TABLES:
        op.add_column(table, sa.Column("_sentinel", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "_sentinel")
