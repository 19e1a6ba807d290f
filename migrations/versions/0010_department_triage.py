"""Departments say which standard triage department they answer for

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("departments", sa.Column("triage_department", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("departments") as batch_op:
        batch_op.drop_column("triage_department")
