from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from filmroll.clock import Clock
from filmroll.platform import InstagramClient
from filmroll.secret import Secret
from filmroll.service.connect import Connector
from filmroll.store.database import Database
from filmroll.vault import Keyring, Vault, generate_key, parse_keys


@dataclass
class Stack:
    database: Database
    vault: Vault
    instagram: InstagramClient
    connector: Connector
    keys: list[str]


def instagram_for(sandbox, clock: Clock | None = None) -> InstagramClient:
    return InstagramClient(app_id=sandbox.app_id, app_secret=Secret(sandbox.app_secret),
                           redirect_uri=sandbox.redirect_uri, authorize_url=sandbox.base_url + "/oauth/authorize",
                           token_url=sandbox.base_url + "/oauth/access_token", graph_url=sandbox.base_url,
                           clock=clock)


@pytest.fixture
async def stack(sandbox, database_url) -> AsyncIterator[Stack]:
    keys = [generate_key()]
    database = Database(database_url)
    vault = Vault(Keyring(parse_keys(",".join(keys))))
    instagram = instagram_for(sandbox)
    connector = Connector(database, vault, instagram,
                          scopes=("instagram_business_basic", "instagram_business_manage_insights"))
    yield Stack(database, vault, instagram, connector, keys)
    await instagram.aclose()
    await database.dispose()
