"""feeds: what websites show (``feeds``, with the worker's republishing lease) and whose posts (``feed_sources``)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("post_limit", sa.Integer(), nullable=False),
        sa.Column("media_types", sa.JSON(), nullable=False),
        sa.Column("reels", sa.Boolean(), nullable=False),
        sa.Column("include_hashtags", sa.JSON(), nullable=False),
        sa.Column("exclude_hashtags", sa.JSON(), nullable=False),
        sa.Column("hidden", sa.JSON(), nullable=False),
        sa.Column("pinned", sa.JSON(), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_version", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_lease_owner", sa.String(80), nullable=True),
        sa.Column("publish_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("publish_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feed_sources",
        sa.Column("feed_id", sa.Integer(), sa.ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_feed_sources_account", "feed_sources", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_sources_account", table_name="feed_sources")
    op.drop_table("feed_sources")
    op.drop_table("feeds")
