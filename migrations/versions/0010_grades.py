"""Credit grades by month (owned by the grading package)

Revision ID: 0010_grades
Revises: 0009_casework
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_grades"
down_revision = "0009_casework"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grade_runs",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("enterprises", sa.Integer, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("config_sha256", sa.String(64), nullable=False),
        sa.Column("computed_at", sa.BigInteger, nullable=False),
        sa.Column("computed_by", sa.String(120), nullable=False),
    )
    op.create_table(
        "grades",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("uscc", sa.String(18), primary_key=True),
        sa.Column("grade", sa.SmallInteger, nullable=False),
        sa.Column("method", sa.SmallInteger, nullable=False),
        sa.Column("letters", sa.String(12), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("indicator_grade", sa.SmallInteger, nullable=False),
        sa.Column("direct_grade", sa.SmallInteger, nullable=False),
        sa.Column("cap", sa.SmallInteger, nullable=False),
        sa.Column("bonus", sa.Float, nullable=False),
        # ①, ② and ⑫: rank, group size, group level (-1: not ranked), value ranked.
        *(
            sa.Column(f"{name}_{k}", kind, nullable=name == "value")
            for k in (1, 2, 12)
            for name, kind in (
                ("rank", sa.Integer),
                ("size", sa.Integer),
                ("level", sa.SmallInteger),
                ("value", sa.Float),
            )
        ),
    )


def downgrade() -> None:
    op.drop_table("grades")
    op.drop_table("grade_runs")
