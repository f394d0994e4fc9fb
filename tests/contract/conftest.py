"""What the state-store contract tests share: every test taking `store` runs on both stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.state.base import StateStore
from shared.state.sqlite_store import SqliteStateStore
from shared.state.table_store import TableStateStore


@pytest.fixture(params=["sqlite", "tables"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "sqlite":
        sqlite = SqliteStateStore(str(tmp_path / "state.db"))
        yield sqlite
        await sqlite.close()
        return
    connection = request.getfixturevalue("azurite_connection_string")
    tables = TableStateStore(connection_string=connection, table_prefix=f"t{uuid.uuid4().hex[:10]}")
    yield tables
    await tables.close()
