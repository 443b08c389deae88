"""Photos by hashtag and from other profiles: hashtag ids kept for good, the 30-tags-a-week ledger, a source's daily
top posts and discovered profile, a post's author where known, and a feed's moderation and block words

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hashtags",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("hashtag_id", sa.String(length=32), nullable=False),
        sa.Column("looked_up_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "hashtag_searches",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("first_searched_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("top_synced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("profile", sa.JSON(), nullable=True))
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("username", sa.String(length=64), nullable=True))
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("moderation", sa.String(length=16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("block_words", sa.JSON(), nullable=True))
    op.execute("UPDATE feeds SET block_words = '[]'")


def downgrade() -> None:
    # Refused rather than lossy: another person's posts have nowhere to go in the older schema.
    others = op.get_bind().execute(sa.text(
        "SELECT id FROM sources WHERE kind IN ('hashtag', 'profile') LIMIT 1")).first()
    if others is not None:
        raise RuntimeError("cannot downgrade below 0019: hashtag or profile sources exist; remove them first "
                           "(`filmroll sources remove`)")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("block_words")
        batch.drop_column("moderation")
    with op.batch_alter_table("media") as batch:
        batch.drop_column("username")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("profile")
        batch.drop_column("top_synced_at")
    op.drop_table("hashtag_searches")
    op.drop_table("hashtags")
