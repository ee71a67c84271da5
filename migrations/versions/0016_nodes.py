"""Nodes: this node's identity, its peers, the durable node outbox and inbox, the
children's pushed figures and forwarded objections, consents requested through a
relay (owned by the nodes package, issue 18)

Revision ID: 0016_nodes
Revises: 0015_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_nodes"
down_revision = "0015_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_identity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "node_peers",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("jwk", sa.Text, nullable=False),
        sa.Column("relation", sa.String(8), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status_changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "node_outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("peer", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("dedup_key", sa.String(100), nullable=True),
        sa.Column("refused", sa.String(40), nullable=True),
        sa.UniqueConstraint("peer", "dedup_key", name="uq_node_outbox_dedup"),
    )
    op.create_index("ix_node_outbox_pending", "node_outbox", ["peer", "delivered_at", "seq"])
    op.create_table(
        "node_inbox",
        sa.Column("peer", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(80), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "node_child_statistics",
        sa.Column("peer", sa.String(32), primary_key=True),
        sa.Column("region", sa.String(6), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("message_seq", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "node_forwarded_objections",
        sa.Column("peer", sa.String(32), primary_key=True),
        sa.Column("objection_id", sa.String(64), primary_key=True),
        sa.Column("enterprise", sa.String(18), nullable=False),
        sa.Column("feature", sa.String(100), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "node_relayed_consents",
        sa.Column("peer", sa.String(32), primary_key=True),
        sa.Column("consent_id", sa.String(40), primary_key=True),
        sa.Column("institution", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("node_relayed_consents")
    op.drop_table("node_forwarded_objections")
    op.drop_table("node_child_statistics")
    op.drop_table("node_inbox")
    op.drop_index("ix_node_outbox_pending", table_name="node_outbox")
    op.drop_table("node_outbox")
    op.drop_table("node_peers")
    op.drop_table("node_identity")
