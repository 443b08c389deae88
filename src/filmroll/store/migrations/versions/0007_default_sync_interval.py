"""an account's sync interval may be NULL, meaning the deployment's default (FILMROLL_SYNC__INTERVAL_MINUTES)

Until now every account was created with 600 seconds and nothing could change it, so 600 is the old default, not a
choice anyone made: those rows follow the setting from now on.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("sync_interval", existing_type=sa.Integer(), nullable=True)
    op.execute("UPDATE accounts SET sync_interval = NULL WHERE sync_interval = 600")


def downgrade() -> None:
    op.execute("UPDATE accounts SET sync_interval = 600 WHERE sync_interval IS NULL")
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("sync_interval", existing_type=sa.Integer(), nullable=False)
