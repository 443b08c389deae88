"""The provider seam: an OAuth state says whose sign-in it is; an Instagram user id is unique per provider

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# 0001 made ig_user_id unique without naming the constraint: PostgreSQL named it, SQLite did not (batch mode finds it
# by this convention).
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_ig_user_id() -> str:
    return "uq_accounts_ig_user_id" if op.get_bind().dialect.name == "sqlite" else "accounts_ig_user_id_key"


def upgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("provider", sa.String(length=32), nullable=False,
                                   server_default="instagram_login"))
    with op.batch_alter_table("accounts", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(_unique_ig_user_id(), type_="unique")
        batch.create_unique_constraint("uq_accounts_provider_ig_user_id", ["provider", "ig_user_id"])


def downgrade() -> None:
    # Refused rather than lossy: two providers' rows for one Instagram user cannot share a unique ig_user_id.
    duplicated = op.get_bind().execute(sa.text(
        "SELECT ig_user_id FROM accounts GROUP BY ig_user_id HAVING COUNT(*) > 1 LIMIT 1")).first()
    if duplicated is not None:
        raise RuntimeError("cannot downgrade below 0015: an Instagram account is connected through two providers; "
                           "disconnect one of them first")
    with op.batch_alter_table("accounts", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint("uq_accounts_provider_ig_user_id", type_="unique")
        batch.create_unique_constraint(_unique_ig_user_id(), ["ig_user_id"])
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("provider")
