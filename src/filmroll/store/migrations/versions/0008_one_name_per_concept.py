"""one name and one unit per concept, and a provider on every account and token

* ``accounts.sync_interval`` (seconds) becomes ``sync_interval_minutes``: minutes are what people set and see.
* ``tokens.failure_count`` / ``last_error`` become ``refresh_failures`` / ``refresh_error``, the twins of
  ``accounts.sync_failures`` / ``sync_error``; each gets a ``*_failure_kind`` (``throttled`` · ``temporary``), so
  no decision reads an error message's text.
* ``provider`` on accounts and tokens: ``instagram_login`` for every row so far.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("sync_interval_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sync_failure_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("provider", sa.String(32), nullable=False, server_default="instagram_login"))
    # Whole minutes only ever reached this column (the CLI's --interval-minutes); round up anything else.
    op.execute("UPDATE accounts SET sync_interval_minutes = (sync_interval + 59) / 60 WHERE sync_interval IS NOT NULL")
    op.execute("UPDATE accounts SET sync_failure_kind = 'throttled' WHERE sync_error LIKE 'RateLimitedError%'")
    op.execute("UPDATE accounts SET sync_failure_kind = 'temporary' "
               "WHERE sync_error IS NOT NULL AND sync_failure_kind IS NULL")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("sync_interval")

    with op.batch_alter_table("tokens") as batch:
        batch.alter_column("failure_count", new_column_name="refresh_failures", existing_type=sa.Integer(),
                           existing_nullable=False)
        batch.alter_column("last_error", new_column_name="refresh_error", existing_type=sa.Text())
        batch.add_column(sa.Column("refresh_failure_kind", sa.String(16), nullable=True))
        batch.add_column(sa.Column("provider", sa.String(32), nullable=False, server_default="instagram_login"))
    op.execute("UPDATE tokens SET refresh_failure_kind = 'throttled' WHERE refresh_error LIKE 'RateLimitedError%'")
    op.execute("UPDATE tokens SET refresh_failure_kind = 'temporary' "
               "WHERE refresh_error IS NOT NULL AND refresh_failure_kind IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("provider")
        batch.drop_column("refresh_failure_kind")
        batch.alter_column("refresh_error", new_column_name="last_error", existing_type=sa.Text())
        batch.alter_column("refresh_failures", new_column_name="failure_count", existing_type=sa.Integer(),
                           existing_nullable=False)
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("sync_interval", sa.Integer(), nullable=True))
    op.execute("UPDATE accounts SET sync_interval = sync_interval_minutes * 60 "
               "WHERE sync_interval_minutes IS NOT NULL")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("provider")
        batch.drop_column("sync_failure_kind")
        batch.drop_column("sync_interval_minutes")
