"""Connected accounts in bulk: tokens minted by the sandbox, sealed by the vault, inserted directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from filmroll.secret import Secret
from filmroll.store.database import Database
from filmroll.store.tables import Account, Source, Token
from filmroll.vault import Vault


async def seed_accounts(database: Database, vault: Vault, sandbox, count: int, *, first: int = 0,
                        age_seconds: float = 40 * 86_400, due: bool = True,
                        permissions: tuple[str, ...] = ("instagram_business_basic",)) -> list[int]:
    """Accounts ``first…first+count-1`` of the sandbox, each with a long-lived token and its own source (given the
    account's id, as accounts are given theirs here); returns their row ids."""
    minted = sandbox.control.mint_tokens(first=first, count=count, kind="long", age_seconds=age_seconds,
                                         permissions=list(permissions))
    now = datetime.now(UTC)
    rows, ids = [], []
    for offset, token in enumerate(minted):
        account_id = first + offset + 1
        ids.append(account_id)
        sealed = vault.seal(Secret(token["access_token"]), account_id)
        rows.append(Account(id=account_id, ig_user_id=token["ig_id"], app_scoped_id=token["user_id"],
                            username=f"sandbox{token['account']}", slug=f"sandbox-{token['account']}",
                            status="active", connected_at=now, created_at=now, updated_at=now))
        # Not due for a sync (``Harness.due`` makes it so): these tests are about tokens unless they say otherwise.
        rows.append(Source(id=account_id, kind="account", account_id=account_id, query="", status="active",
                           created_at=now, next_sync_at=None, sync_failures=0, mirror_failures=0))
        rows.append(Token(account_id=account_id, ciphertext=sealed.ciphertext, key_id=sealed.key_id, kind="long",
                          permissions=",".join(permissions),
                          issued_at=datetime.fromtimestamp(token["issued_at"], UTC),
                          expires_at=datetime.fromtimestamp(token["expires_at"], UTC),
                          next_refresh_at=now - timedelta(minutes=1) if due else now + timedelta(days=10),
                          version=1, refresh_failures=0))
    async with database.transaction() as session:
        session.add_all([r for r in rows if isinstance(r, Account)])
        await session.flush()
        session.add_all([r for r in rows if not isinstance(r, Account)])
    return ids


def index_with(sandbox, low: int, high: int) -> int:
    """A sandbox account (by index) with between ``low`` and ``high`` posts."""
    return next(a["index"] for a in sandbox.control.accounts(limit=60)["data"] if low <= a["media_count"] <= high)


def let_time_pass(sandbox, database_url: str, seconds: float) -> None:
    """Both sides age: the sandbox's clock moves on, and the stored tokens' times move back by as much (a filmroll
    process of its own reads the machine's clock, which a test cannot move)."""
    from sqlalchemy import select

    from tests import aio

    sandbox.control.advance(seconds)
    by = timedelta(seconds=seconds)

    async def backdate() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                for token in (await session.execute(select(Token))).scalars():
                    token.issued_at, token.expires_at = token.issued_at - by, token.expires_at - by
        finally:
            await database.dispose()

    aio.run(backdate())
