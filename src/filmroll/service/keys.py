"""Vault key rotation: re-encrypt every stored token under the keyring's first key.

Runs in small batches, each its own transaction, fenced on the token version, so it can be interrupted and run
again at any point, and a refresh that lands meanwhile is never overwritten with an older token.
"""

from __future__ import annotations

from filmroll.store import events, tokens
from filmroll.store.database import Database
from filmroll.vault import Vault

BATCH = 200


async def usage(database: Database) -> dict[str, int]:
    async with database.read() as session:
        return await tokens.key_ids_in_use(session)


async def reencrypt(database: Database, vault: Vault, *, actor: str | None = None) -> int:
    """Re-encrypt every token not yet under the primary key; returns how many rows moved."""
    moved = 0
    skipped: set[int] = set()
    while True:
        async with database.read() as session:
            batch = [t for t in await tokens.sealed_with_other_keys(session, vault.keyring.primary_id,
                                                                     BATCH + len(skipped))
                     if t.account_id not in skipped][:BATCH]
        if not batch:
            break
        async with database.transaction() as session:
            for token in batch:
                plain = vault.open(token.ciphertext, token.key_id, token.account_id)
                if await tokens.reseal_if_version(session, token.account_id, token.version,
                                                  vault.seal(plain, token.account_id)):
                    moved += 1
                else:
                    skipped.add(token.account_id)  # refreshed meanwhile: already under the new key
    if moved:
        async with database.transaction() as session:
            await events.record(session, "vault.reencrypted",
                                f"{moved} token(s) re-encrypted under key {vault.keyring.primary_id}",
                                at=database.clock.now(), actor=actor)
    return moved
