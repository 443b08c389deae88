"""feed_posts: an operator's decision on each post of each feed, instead of the feeds' JSON arrays hidden and pinned

Revision ID: 0016
Revises: 0015
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_FEEDS = sa.table("feeds", sa.column("id", sa.Integer), sa.column("hidden", sa.JSON), sa.column("pinned", sa.JSON),
                  sa.column("updated_at", sa.DateTime(timezone=True)))


def _posts() -> sa.Table:
    return sa.table("feed_posts", sa.column("feed_id", sa.Integer), sa.column("ig_media_id", sa.String),
                    sa.column("state", sa.String), sa.column("pinned_position", sa.Integer),
                    sa.column("decided_by", sa.String), sa.column("decided_at", sa.DateTime(timezone=True)))


def _ids(value: object) -> list[str]:
    if isinstance(value, str):  # a driver that hands JSON back as text
        value = json.loads(value)
    return [str(v) for v in value] if isinstance(value, list) else []


def upgrade() -> None:
    op.create_table(
        "feed_posts",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("ig_media_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pinned_position", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "ig_media_id"),
    )
    bind = op.get_bind()
    rows = []
    for feed_id, hidden, pinned, updated_at in bind.execute(sa.select(_FEEDS)):
        hidden_ids, pinned_ids = _ids(hidden), list(dict.fromkeys(_ids(pinned)))
        # Who decided was never recorded; when is the feed's last edit.
        for ig_id in dict.fromkeys(hidden_ids + pinned_ids):
            rows.append({"feed_id": feed_id, "ig_media_id": ig_id[:64],
                         "state": "hidden" if ig_id in hidden_ids else "approved",
                         "pinned_position": pinned_ids.index(ig_id) if ig_id in pinned_ids else None,
                         "decided_by": None, "decided_at": updated_at})
    if rows:
        op.bulk_insert(_posts(), rows)
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("hidden")
        batch.drop_column("pinned")


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("hidden", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("pinned", sa.JSON(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    posts = _posts()
    found: dict[int, tuple[list[str], list[tuple[int, str]]]] = {}
    for feed_id, ig_id, state, position in bind.execute(
            sa.select(posts.c.feed_id, posts.c.ig_media_id, posts.c.state, posts.c.pinned_position)
            .order_by(posts.c.decided_at, posts.c.ig_media_id)):
        hidden, pinned = found.setdefault(feed_id, ([], []))
        if state == "hidden":
            hidden.append(ig_id)
        if position is not None:
            pinned.append((position, ig_id))
    for feed_id, (hidden, pinned) in found.items():
        bind.execute(sa.update(_FEEDS).where(_FEEDS.c.id == feed_id).values(
            hidden=hidden, pinned=[ig_id for _, ig_id in sorted(pinned)]))
    op.drop_table("feed_posts")
