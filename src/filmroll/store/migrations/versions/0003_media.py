"""media and their carousel children; sync bookkeeping on accounts

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("full_synced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sync_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("sync_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("usage_percent", sa.Integer(), nullable=True))
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("ig_media_id", sa.String(length=32), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=True),
        sa.Column("media_product_type", sa.String(length=20), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("shortcode", sa.String(length=40), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("thumbnail_url", sa.Text(), nullable=True),
        sa.Column("alt_text", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("like_count", sa.BigInteger(), nullable=True),
        sa.Column("comments_count", sa.BigInteger(), nullable=True),
        sa.Column("children_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "ig_media_id", name="uq_media_account_ig_id"),
    )
    op.create_index("ix_media_account_timestamp", "media", ["account_id", "timestamp"])
    op.create_table(
        "media_children",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("ig_media_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("thumbnail_url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("media_id", "ig_media_id", name="uq_media_children_parent_ig_id"),
    )


def downgrade() -> None:
    op.drop_table("media_children")
    op.drop_index("ix_media_account_timestamp", table_name="media")
    op.drop_table("media")
    with op.batch_alter_table("accounts") as batch:
        for column in ("usage_percent", "sync_error", "sync_failures", "full_synced_at"):
            batch.drop_column(column)
