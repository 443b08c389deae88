"""Account queries. An account's posts, and the sync and mirror of them, are its sources' (``store/sources.py``).
Nothing here commits; the caller's transaction decides."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import sources
from filmroll.store.lease import Claim
from filmroll.store.tables import Account, Source, Token
from filmroll.vocabulary import AccountStatus, Provider, SourceKind

_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


async def _free_slug(session: AsyncSession, wanted: str) -> str:
    base = _SLUG_UNSAFE.sub("-", wanted.lower()).strip("-")[:60] or "account"
    taken = set((await session.execute(
        select(Account.slug).where(or_(Account.slug == base, Account.slug.like(f"{base}-%"))))).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


PROFILE_COLUMNS = sources.PROFILE_COLUMNS


async def upsert(session: AsyncSession, *, ig_user_id: str, app_scoped_id: str | None,
                 profile: Mapping[str, object], now: datetime,
                 provider: str = Provider.INSTAGRAM_LOGIN) -> tuple[Account, bool]:
    """Create or refresh the account of ``ig_user_id`` through ``provider``, and its own source, due for a sync now;
    returns (account, created). Reconnecting keeps the rows; its status is the caller's to set
    (``service/transitions.py``). ``profile`` holds :data:`PROFILE_COLUMNS`; one missing or None keeps its value."""
    account = (await session.execute(
        select(Account).where(Account.provider == provider, Account.ig_user_id == ig_user_id)
        .with_for_update())).scalar_one_or_none()
    created = account is None
    if account is None:
        account = Account(ig_user_id=ig_user_id, provider=provider, created_at=now,
                          slug=await _free_slug(session, str(profile.get("username") or ig_user_id)))
        session.add(account)
    account.app_scoped_id = app_scoped_id or account.app_scoped_id
    for name in PROFILE_COLUMNS:
        value = profile.get(name)
        if value is not None:
            setattr(account, name, value)
    account.connected_at = account.updated_at = now
    await session.flush()
    await sources.ensure_of_account(session, account.id, now=now)
    return account, created


async def by_scoped_id(session: AsyncSession, scoped_user_id: str) -> Account | None:
    """The account an app-scoped id Meta sends names: matched against both ids kept per account (the reference
    does not settle which one Instagram Login's callbacks carry)."""
    return await session.scalar(select(Account).where(
        or_(Account.app_scoped_id == scoped_user_id, Account.ig_user_id == scoped_user_id)))


async def find(session: AsyncSession, ref: str, *, provider: str | None = None) -> Account | None:
    """By id, Instagram user id, @username or feed slug (of one provider's accounts, when ``provider`` is given:
    one person's account connected through both providers is two rows)."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():  # str.isdigit takes superscripts and other scripts' digits too
        conditions = [Account.ig_user_id == ref]
        if len(ref) < 12:  # a row id; Instagram ids are far longer
            conditions.append(Account.id == int(ref))
        found = await session.execute(select(Account).where(or_(*conditions)))
    else:
        name = ref.lstrip("@").lower()
        found = await session.execute(select(Account).where(or_(func.lower(Account.username) == name,
                                                                Account.slug == name)))
    rows = [a for a in found.scalars() if provider is None or a.provider == provider]
    return rows[0] if len(rows) == 1 else None


async def page(session: AsyncSession, *, after: int | None, limit: int, status: str | None = None,
               provider: str | None = None, username: str | None = None,
               custom_id: str | None = None) -> list[Account]:
    """Accounts by id after ``after`` (keyset paging: as fast on the last page as on the first), filtered by
    status, provider, and a part of the username (case-insensitive)."""
    query = select(Account).order_by(Account.id).limit(limit)
    if after is not None:
        query = query.where(Account.id > after)
    if status is not None:
        query = query.where(Account.status == status)
    if provider is not None:
        query = query.where(Account.provider == provider)
    if custom_id is not None:
        query = query.where(Account.custom_id == custom_id)
    return list((await session.execute(_named(query, username))).scalars())


# The accounts page's order: those that need someone first.
STATUS_ORDER = (AccountStatus.NEEDS_REAUTH, AccountStatus.REVOKED, AccountStatus.ACTIVE, AccountStatus.DISCONNECTED)


async def in_status_order(session: AsyncSession, *, after: tuple[str, int] | None, limit: int,
                          status: str | None = None, username: str | None = None) -> list[Account]:
    """Accounts a status at a time (STATUS_ORDER), by id within one, after ``after`` (status, id): keyset paging
    on the (status, id) index, as fast on the last page as on the first."""
    statuses = [s.value for s in STATUS_ORDER] if status is None else [status]
    start = statuses.index(after[0]) if after is not None and after[0] in statuses else 0
    found: list[Account] = []
    for current in statuses[start:]:
        query = _named(select(Account).where(Account.status == current), username).order_by(Account.id)
        if after is not None and current == after[0]:
            query = query.where(Account.id > after[1])
        found += (await session.execute(query.limit(limit - len(found)))).scalars()
        if len(found) >= limit:
            break
    return found


async def status_counts(session: AsyncSession, username: str | None = None) -> dict[str, int]:
    query = _named(select(Account.status, func.count()), username).group_by(Account.status)
    return {status: count for status, count in await session.execute(query)}


def _named(query: Any, username: str | None) -> Any:
    """``query`` narrowed to usernames holding ``username`` (case-insensitive), when one is given."""
    if not username:
        return query
    escaped = username.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return query.where(func.lower(Account.username).like(f"%{escaped}%", escape="\\"))


async def ids(session: AsyncSession) -> list[int]:
    return list((await session.execute(select(Account.id))).scalars())


async def last_instagram_activity(session: AsyncSession) -> tuple[int, datetime | None]:
    """(how many tokens filmroll holds, the newest time one of them reached Instagram: a connect, a refresh, a
    probe, a sync). Webhook deliveries are Meta's side of the same activity (``store.webhooks.last_received``)."""
    tokens_held, refreshed, probed = (await session.execute(
        select(func.count(Token.account_id), func.max(Token.refreshed_at), func.max(Token.last_probe_at)))).one()
    connected = (await session.execute(select(func.max(Account.connected_at)))).scalar()
    synced = (await session.execute(select(func.max(Source.last_synced_at)))).scalar()
    found = [t for t in (refreshed, probed, connected, synced) if t is not None]
    return tokens_held, max(found) if found else None


def label(account_id: int, username: str | None) -> str:
    """How logs name an account: ``@username``, or ``account N`` before its profile is known."""
    return sources.describe(SourceKind.ACCOUNT, "", username, account_id)


async def usernames(session: AsyncSession, account_ids: Sequence[int]) -> dict[int, str | None]:
    """The usernames of ``account_ids``, for the claims of tables other than ``accounts`` (their logs name them)."""
    if not account_ids:
        return {}
    rows = await session.execute(select(Account.id, Account.username).where(Account.id.in_(list(account_ids))))
    return {account_id: username for account_id, username in rows}


class AccountClaim(Claim):
    """A claim on an account's row or on a row keyed by its account (its token): logged as the account."""

    KEY: ClassVar[str] = "account_id"
    account_id: int
    username: str | None

    @property
    def label(self) -> str:
        return label(self.account_id, self.username)


def active() -> ColumnElement[bool]:
    return Account.status == AccountStatus.ACTIVE
