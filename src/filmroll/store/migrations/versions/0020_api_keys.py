"""The management API's keys (their SHA-256 only, with name, scope, prefix, created, last used and revoked); the
accounts page's index (a status at a time, by id); connect links and the custom id they give an account

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("sha256", name="uq_api_keys_sha256"),
    )
    op.create_index("ix_accounts_status_id", "accounts", ["status", "id"])
    op.create_table(
        "connect_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("custom_id", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("custom_id", sa.String(length=100), nullable=True))
        batch.create_index("ix_accounts_custom_id", ["custom_id"])
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("connect_link_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_oauth_states_connect_link_id", "connect_links", ["connect_link_id"], ["id"],
                                 ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_constraint("fk_oauth_states_connect_link_id", type_="foreignkey")
        batch.drop_column("connect_link_id")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_custom_id")
        batch.drop_column("custom_id")
    op.drop_table("connect_links")
    op.drop_index("ix_accounts_status_id", table_name="accounts")
    op.drop_table("api_keys")
