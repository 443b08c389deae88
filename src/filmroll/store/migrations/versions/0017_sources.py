"""sources: where posts come from, and the unit of the sync and mirror jobs; posts, files and feeds point at them

Every account gets its ``account`` source with the sync and mirror columns it had; ``media``, ``media_files`` and
``feed_sources`` move from the account to that source. Stored files stay where they are (their keys are in their
rows); new ones go under ``sources/{id}/``.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The columns that move from accounts to sources, with their types (in 0001…0009's order).
MOVED = (
    ("sync_interval_minutes", sa.Integer(), None), ("next_sync_at", sa.DateTime(timezone=True), None),
    ("last_synced_at", sa.DateTime(timezone=True), None), ("stale_since", sa.DateTime(timezone=True), None),
    ("sync_lease_owner", sa.String(length=80), None), ("sync_lease_until", sa.DateTime(timezone=True), None),
    ("full_synced_at", sa.DateTime(timezone=True), None), ("sync_failures", sa.Integer(), "0"),
    ("sync_error", sa.Text(), None), ("sync_failure_kind", sa.String(length=16), None),
    ("usage_percent", sa.Integer(), None), ("insights_at", sa.DateTime(timezone=True), None),
    ("media_fingerprint", sa.String(length=64), None), ("next_mirror_at", sa.DateTime(timezone=True), None),
    ("mirror_lease_owner", sa.String(length=80), None), ("mirror_lease_until", sa.DateTime(timezone=True), None),
    ("mirror_failures", sa.Integer(), "0"), ("mirror_error", sa.Text(), None),
    ("mirror_collected_at", sa.DateTime(timezone=True), None),
)
_NAMES = ", ".join(name for name, _, _ in MOVED)
# The account source of the row's account_id (a correlated subquery both dialects run).
_ACCOUNT_SOURCE = "(SELECT s.id FROM sources s WHERE s.kind = 'account' AND s.account_id = {table}.account_id)"
_SOURCE_ACCOUNT = "(SELECT s.account_id FROM sources s WHERE s.id = {table}.source_id)"


def _fk(table: str, column: str) -> str:
    """A foreign key's name: PostgreSQL's default; on SQLite the batch copy is told this name (see below)."""
    return f"{table}_{column}_fkey"


def _sqlite_fk_names() -> dict[str, str]:
    # SQLite keeps foreign keys unnamed: batch mode finds one to drop by this naming convention.
    return {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("query", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=20), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, kind, nullable=default is None, server_default=default) for name, kind, default in MOVED),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE", name=_fk("sources", "account_id")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "kind", "query", name="uq_sources_account_kind_query"),
    )
    op.create_index("ix_sources_due_sync", "sources", ["status", "next_sync_at"])
    op.create_index("ix_sources_due_mirror", "sources", ["next_mirror_at"])
    op.execute(f"INSERT INTO sources (kind, account_id, query, status, created_at, {_NAMES}) "  # noqa: S608
               f"SELECT 'account', id, '', 'active', created_at, {_NAMES} FROM accounts ORDER BY id")

    _rekey("media", old="account_id", new="source_id", target="sources", value=_ACCOUNT_SOURCE,
           unique=("uq_media_account_ig_id", "uq_media_source_ig_id"), rest=["ig_media_id"],
           indexes={"ix_media_account_timestamp": ("ix_media_source_timestamp", ["source_id", "timestamp"])})
    _rekey("media_files", old="account_id", new="source_id", target="sources", value=_ACCOUNT_SOURCE,
           unique=("uq_media_files_key", "uq_media_files_key"), rest=["ig_media_id", "role", "variant"],
           indexes={"ix_media_files_sha256": ("ix_media_files_sha256", ["sha256"])})

    op.drop_index("ix_feed_sources_account", table_name="feed_sources")
    _rebuild_feed_sources("source_id", "sources", _ACCOUNT_SOURCE.format(table="feed_sources_old"))
    op.create_index("ix_feed_sources_source", "feed_sources", ["source_id"])

    op.drop_index("ix_accounts_due_sync", table_name="accounts")
    op.drop_index("ix_accounts_due_mirror", table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        for name, _, _ in MOVED:
            batch.drop_column(name)


def _rebuild_feed_sources(column: str, target: str, value: str) -> None:
    """``feed_sources`` keyed by (feed_id, ``column``) instead: a new table under the old names, filled from the old
    one (its primary key changes, which no ALTER does on SQLite)."""
    op.rename_table("feed_sources", "feed_sources_old")
    if op.get_bind().dialect.name == "postgresql":  # the key's index is a relation: its name must be free
        op.execute("ALTER TABLE feed_sources_old RENAME CONSTRAINT feed_sources_pkey TO feed_sources_old_pkey")
    op.create_table(
        "feed_sources",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column(column, sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE", name=_fk("feed_sources", "feed_id")),
        sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete="CASCADE", name=_fk("feed_sources", column)),
        sa.PrimaryKeyConstraint("feed_id", column, name="feed_sources_pkey"),
    )
    op.execute(f"INSERT INTO feed_sources (feed_id, {column}, position) "  # noqa: S608
               f"SELECT feed_id, {value}, position FROM feed_sources_old")
    op.drop_table("feed_sources_old")


def _rekey(table: str, *, old: str, new: str, target: str, value: str, unique: tuple[str, str], rest: list[str],
           indexes: dict[str, tuple[str, list[str]]]) -> None:
    """``table.old`` becomes ``table.new``, a key of ``target``: each row's ``value`` (SQL), with its foreign key,
    its unique constraint (``unique``: the old name, the new) and its indexes (old name: new name, columns)."""
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column(new, sa.Integer(), nullable=True))
    op.execute(f"UPDATE {table} SET {new} = {value.format(table=table)}")  # noqa: S608
    for name in indexes:
        op.drop_index(name, table_name=table)
    naming = _sqlite_fk_names() if op.get_bind().dialect.name == "sqlite" else {}
    with op.batch_alter_table(table, naming_convention=naming) as batch:
        batch.drop_constraint(unique[0], type_="unique")
        batch.drop_constraint(_fk(table, old), type_="foreignkey")
        batch.drop_column(old)
        batch.alter_column(new, existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(_fk(table, new), target, [new], ["id"], ondelete="CASCADE")
        batch.create_unique_constraint(unique[1], [new, *rest])
    for name, columns in indexes.values():
        op.create_index(name, table, columns)


def downgrade() -> None:
    # Refused rather than lossy: before 0017 a post could only be an account's own.
    other = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM sources WHERE kind <> 'account' OR account_id IS NULL")).scalar()
    if other:
        raise RuntimeError(f"cannot downgrade below 0017: {other} source(s) are not an account's own posts "
                           "(hashtags, other profiles); remove them first")
    with op.batch_alter_table("accounts") as batch:
        for name, kind, default in MOVED:
            batch.add_column(sa.Column(name, kind, nullable=True, server_default=default))
    for name, _, _ in MOVED:
        op.execute(f"UPDATE accounts SET {name} = (SELECT s.{name} FROM sources s "  # noqa: S608
                   "WHERE s.kind = 'account' AND s.account_id = accounts.id)")
    with op.batch_alter_table("accounts") as batch:
        for name, kind, default in MOVED:
            if default is not None:
                batch.alter_column(name, existing_type=kind, nullable=False)
    op.create_index("ix_accounts_due_sync", "accounts", ["status", "next_sync_at"])
    op.create_index("ix_accounts_due_mirror", "accounts", ["next_mirror_at"])

    op.drop_index("ix_feed_sources_source", table_name="feed_sources")
    _rebuild_feed_sources("account_id", "accounts", _SOURCE_ACCOUNT.format(table="feed_sources_old"))
    op.create_index("ix_feed_sources_account", "feed_sources", ["account_id"])

    _rekey("media", old="source_id", new="account_id", target="accounts", value=_SOURCE_ACCOUNT,
           unique=("uq_media_source_ig_id", "uq_media_account_ig_id"), rest=["ig_media_id"],
           indexes={"ix_media_source_timestamp": ("ix_media_account_timestamp", ["account_id", "timestamp"])})
    _rekey("media_files", old="source_id", new="account_id", target="accounts", value=_SOURCE_ACCOUNT,
           unique=("uq_media_files_key", "uq_media_files_key"), rest=["ig_media_id", "role", "variant"],
           indexes={"ix_media_files_sha256": ("ix_media_files_sha256", ["account_id", "sha256"])})
    op.drop_index("ix_sources_due_mirror", table_name="sources")
    op.drop_index("ix_sources_due_sync", table_name="sources")
    op.drop_table("sources")
