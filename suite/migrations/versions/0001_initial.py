"""Initial schema: claims (with history), runs (with provenance), metrics, series.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("claim_id", sa.String(200), nullable=False, index=True),
        sa.Column("paper", sa.String(100), nullable=False),
        sa.Column("definition_hash", sa.String(32), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.UniqueConstraint("claim_id", "definition_hash"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_key", sa.String(40), nullable=False, unique=True, index=True),
        sa.Column("claim_id", sa.String(200), nullable=False, index=True),
        sa.Column("claim_hash", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("arm", sa.String(20), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("wall_s", sa.Float, nullable=True),
        sa.Column("git_sha", sa.String(40), nullable=False),
        sa.Column("git_dirty", sa.Boolean, nullable=False),
        sa.Column("python_version", sa.String(20), nullable=False),
        sa.Column("torch_version", sa.String(40), nullable=False),
        sa.Column("device_name", sa.String(200), nullable=False),
        sa.Column("provenance", sa.JSON, nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "series",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("series")
    op.drop_table("metrics")
    op.drop_table("runs")
    op.drop_table("claims")
