"""token health probes: when each token was last checked and is next due

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("next_probe_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_probe_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tokens_due_probe", ["next_probe_at"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_due_probe")
        batch.drop_column("last_probe_at")
        batch.drop_column("next_probe_at")
