"""media_files.storage: which storage holds each file, so a changed FILMROLL_STORAGE__URL re-mirrors

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: written before filmroll recorded it; the first worker (or `filmroll mirror`) takes it for the storage
    # in use then.
    with op.batch_alter_table("media_files") as batch:
        batch.add_column(sa.Column("storage", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media_files") as batch:
        batch.drop_column("storage")
