"""the media mirror: ``media_files``, each post's mirror state, each account's mirror lease

Every account with posts becomes due for its first mirror pass at once.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_files",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ig_media_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("variant", sa.String(24), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("source_name", sa.Text(), nullable=True),
        sa.Column("color", sa.String(16), nullable=True),
        sa.Column("palette", sa.Text(), nullable=True),
        sa.Column("placeholder", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("account_id", "ig_media_id", "role", "variant", name="uq_media_files_key"),
    )
    op.create_index("ix_media_files_sha256", "media_files", ["account_id", "sha256"])
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("mirrored_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("mirror_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("mirror_error", sa.Text(), nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("next_mirror_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("mirror_lease_owner", sa.String(80), nullable=True))
        batch.add_column(sa.Column("mirror_lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("mirror_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("mirror_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("mirror_collected_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_accounts_due_mirror", "accounts", ["next_mirror_at"])
    op.execute("UPDATE accounts SET next_mirror_at = updated_at")


def downgrade() -> None:
    op.drop_index("ix_accounts_due_mirror", "accounts")
    with op.batch_alter_table("accounts") as batch:
        for column in ("mirror_collected_at", "mirror_error", "mirror_failures", "mirror_lease_until",
                       "mirror_lease_owner", "next_mirror_at"):
            batch.drop_column(column)
    with op.batch_alter_table("media") as batch:
        for column in ("mirror_error", "mirror_attempts", "mirrored_at"):
            batch.drop_column(column)
    op.drop_index("ix_media_files_sha256", "media_files")
    op.drop_table("media_files")
