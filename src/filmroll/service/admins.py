"""Creating admins and ending their sessions."""

from __future__ import annotations

from filmroll.errors import FilmrollError
from filmroll.passwords import hash_password
from filmroll.store import admins, events
from filmroll.store.database import Database


async def create(database: Database, username: str, password: str) -> None:
    username = username.strip()
    if not username or len(username) > 64:
        raise FilmrollError("an admin username is 1 to 64 characters")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise FilmrollError(str(exc)) from None
    now = database.clock.now()
    async with database.transaction() as session:
        if await admins.find(session, username) is not None:
            raise FilmrollError(f"an admin named {username!r} already exists")
        await admins.create(session, username, password_hash, now)
        await events.record(session, "admin.created", f"admin {username} created", at=now, actor="cli")


async def end_sessions(database: Database, username: str) -> int:
    now = database.clock.now()
    async with database.transaction() as session:
        admin = await admins.find(session, username)
        if admin is None:
            raise FilmrollError(f"no admin named {username!r}")
        return await admins.close_all_sessions(session, admin.id, now)
