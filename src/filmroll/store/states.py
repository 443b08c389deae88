"""OAuth ``state`` values: created with the authorization request, consumed once by the callback.

Only a SHA-256 of the state is stored, and the callback consumes it with a conditional UPDATE, so two concurrent
deliveries of one redirect cannot both pass: exactly one sees its row change.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.errors import CallbackError
from filmroll.store.database import rowcount
from filmroll.store.tables import OAuthState


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def create(session: AsyncSession, state: str, *, session_id: str | None, flow: str, provider: str,
                 redirect_uri: str, now: datetime, ttl: timedelta, reconnect_link_id: int | None = None,
                 connect_link_id: int | None = None) -> None:
    await session.execute(delete(OAuthState).where(OAuthState.expires_at < now - timedelta(days=1)))
    session.add(OAuthState(state_hash=digest(state), session_hash=digest(session_id) if session_id else None,
                           flow=flow, provider=provider, redirect_uri=redirect_uri, created_at=now,
                           expires_at=now + ttl, reconnect_link_id=reconnect_link_id,
                           connect_link_id=connect_link_id))
    await session.flush()


async def flow_of(session: AsyncSession, state: str) -> str | None:
    """Which flow started this state (``web``, ``cli``, ``reconnect``, ``connect_link``), so the callback knows
    whom to ask."""
    row = await session.get(OAuthState, digest(state))
    return row.flow if row is not None else None


async def connect_link_of(session: AsyncSession, state: str) -> int | None:
    row = await session.get(OAuthState, digest(state))
    return row.connect_link_id if row is not None else None


async def consume(session: AsyncSession, state: str, *, session_id: str | None, flow: str,
                  now: datetime) -> OAuthState:
    """Mark the state used, or raise a CallbackError that says precisely why it is not acceptable."""
    row = await session.get(OAuthState, digest(state))
    if row is None or row.flow != flow:
        raise CallbackError("This sign-in link is unknown to filmroll. Start the connection again.",
                            code="unknown_state")
    if row.session_hash is not None and (session_id is None or digest(session_id) != row.session_hash):
        raise CallbackError("This sign-in was started in another browser session. Start the connection again "
                            "from this browser.", code="foreign_state")
    if row.used_at is not None:
        raise CallbackError("This sign-in link was already used. Start the connection again.", code="used_state")
    if row.expires_at <= now:
        raise CallbackError("This sign-in link expired (they last 10 minutes). Start the connection again.",
                            code="expired_state")
    result = await session.execute(
        update(OAuthState).where(OAuthState.state_hash == row.state_hash, OAuthState.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    if rowcount(result) != 1:
        raise CallbackError("This sign-in link was already used. Start the connection again.", code="used_state")
    return row
