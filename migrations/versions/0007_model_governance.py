"""Model governance: owners and review status of joint models, and the distinct models
scored per institution and enterprise (owned by the federated package)

Revision ID: 0007_model_governance
Revises: 0006_person_sessions

Models registered before this revision were serving: they stay ``approved``. Their owner
is the institution named by an ``owner/name`` id, else ``_operator`` (the only owner of a
bare id, which no institution can add versions to).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_model_governance"
down_revision = "0006_person_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("joint_models") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.BigInteger, nullable=True))
    models = sa.table(
        "joint_models",
        sa.column("id", sa.String),
        sa.column("owner", sa.String),
        sa.column("status", sa.String),
    )
    conn = op.get_bind()
    for (model_id,) in conn.execute(sa.select(models.c.id).distinct()).all():
        owner = model_id.partition("/")[0] if "/" in model_id else "_operator"
        conn.execute(
            models.update().where(models.c.id == model_id).values(owner=owner, status="approved")
        )
    with op.batch_alter_table("joint_models") as batch:
        batch.alter_column("owner", existing_type=sa.String(64), nullable=False)
        batch.alter_column("status", existing_type=sa.String(16), nullable=False)
    op.create_index("ix_joint_models_status", "joint_models", ["status", "id"])
    op.create_table(
        "score_model_uses",
        sa.Column("institution_id", sa.String(64), primary_key=True),
        sa.Column("enterprise", sa.String(18), primary_key=True),
        sa.Column("model", sa.String(90), primary_key=True),
        sa.Column("grant_id", sa.String(40), primary_key=True),
        sa.Column("first_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_score_model_uses_window",
        "score_model_uses",
        ["institution_id", "enterprise", "first_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_score_model_uses_window", table_name="score_model_uses")
    op.drop_table("score_model_uses")
    op.drop_index("ix_joint_models_status", table_name="joint_models")
    with op.batch_alter_table("joint_models") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("status")
        batch.drop_column("owner")
