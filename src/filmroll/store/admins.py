"""Admins and their browser sessions. Session ids are stored only as SHA-256 hashes (sign-in attempts:
``store/throttles.py``)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store.database import rowcount
from filmroll.store.tables import Admin, AdminSession


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def find(session: AsyncSession, username: str) -> Admin | None:
    return (await session.execute(select(Admin).where(Admin.username == username))).scalar_one_or_none()


async def create(session: AsyncSession, username: str, password_hash: str, now: datetime) -> Admin:
    admin = Admin(username=username, password_hash=password_hash, created_at=now, updated_at=now)
    session.add(admin)
    await session.flush()
    return admin


async def set_password_hash(session: AsyncSession, admin: Admin, password_hash: str, now: datetime) -> None:
    admin.password_hash, admin.updated_at = password_hash, now
    await session.flush()


async def open_session(session: AsyncSession, admin_id: int, session_id: str, now: datetime,
                       lifetime: timedelta) -> None:
    session.add(AdminSession(id_hash=digest(session_id), admin_id=admin_id, created_at=now, last_seen_at=now,
                             expires_at=now + lifetime))
    await session.flush()


async def live_session(session: AsyncSession, session_id: str, now: datetime,
                       idle: timedelta) -> tuple[AdminSession, Admin] | None:
    row = await session.get(AdminSession, digest(session_id))
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    admin = await session.get(Admin, row.admin_id)
    return (row, admin) if admin is not None else None


async def touch_session(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.execute(update(AdminSession).where(AdminSession.id_hash == digest(session_id))
                          .values(last_seen_at=now).execution_options(synchronize_session=False))


async def close_session(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.execute(update(AdminSession).where(AdminSession.id_hash == digest(session_id))
                          .values(revoked_at=now).execution_options(synchronize_session=False))


async def close_all_sessions(session: AsyncSession, admin_id: int, now: datetime) -> int:
    result = await session.execute(update(AdminSession).where(AdminSession.admin_id == admin_id,
                                                              AdminSession.revoked_at.is_(None))
                                   .values(revoked_at=now).execution_options(synchronize_session=False))
    return rowcount(result)
