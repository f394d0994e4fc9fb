"""Every record key is its own state row: a key over what a RowKey holds is stored under its hash,
and no other key, however it is crafted (a Finance key is the source's text), reads or takes that
row. Both stores, SQLite on a file and Table Storage on a real Azurite."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest

from shared.state.base import StateConflictError, StateStore, SyncState
from shared.state.table_store import TableStateStore, encode_key

LONG = "a" * 600
DIGEST = hashlib.sha256(LONG.encode()).hexdigest()
# Short keys of characters the encoding leaves as they are, shaped as a hashed RowKey: the form rows
# were written in before ("~"), and the form they are written in now.
CRAFTED = ["a" * 200 + "~" + DIGEST, "a" * 200 + "^" + DIGEST]


@pytest.fixture
async def tables(azurite_connection_string: str) -> AsyncIterator[TableStateStore]:
    store = TableStateStore(connection_string=azurite_connection_string, table_prefix=f"t{uuid.uuid4().hex[:10]}")
    yield store
    await store.close()


@pytest.mark.parametrize("crafted", CRAFTED)
async def test_a_short_key_shaped_as_a_long_keys_hash_reads_nothing_of_it(store: StateStore, crafted: str) -> None:
    await store.put_state(SyncState("f", LONG, 7, "hash-of-long", '{"k": "L"}', tombstone=True))
    assert await store.get_state("f", crafted) is None  # not the long key's tombstone, version or hash
    await store.put_state(SyncState("f", crafted, 3, "hash-of-crafted"), read=None)
    got = await store.get_state("f", crafted)
    assert got is not None
    assert (got.key, got.version, got.payload_hash, got.tombstone) == (crafted, 3, "hash-of-crafted", False)
    long = await store.get_state("f", LONG)
    assert long is not None
    assert (long.key, long.version, long.payload_hash, long.tombstone) == (LONG, 7, "hash-of-long", True)


def test_only_a_key_too_long_for_a_row_key_encodes_to_the_hashed_form() -> None:
    for key in [*CRAFTED, "x^y", "%5E", "^" * 100]:
        assert "^" not in encode_key(key), key
    for key in [LONG, "^" * 600]:
        assert "^" in encode_key(key), key


async def _old_row(tables: TableStateStore, row_key: str, key: str, version: int) -> None:
    """A row as the store wrote it before hashed RowKeys were marked with "^"."""
    client = await tables._table("syncstate")
    await client.upsert_entity(
        {
            "PartitionKey": "f",
            "RowKey": row_key,
            "flow": "f",
            "key": key,
            "tombstone": False,
            "updated_at": "2026-11-02T08:30:00+00:00",
            "version": version,
            "payload_hash": f"h{version}",
        }
    )


async def test_a_long_keys_row_from_before_is_read_and_written_on_under_the_new_row_key(
    tables: TableStateStore,
) -> None:
    await _old_row(tables, CRAFTED[0], LONG, 7)
    old = await tables.get_state("f", LONG)
    other = await tables.get_state("f", LONG)  # a second instance, on the same old row
    assert old is not None and (old.version, old.payload_hash) == (7, "h7")
    old.version = 8
    await tables.put_state(old, read=old)
    got = await tables.get_state("f", LONG)
    assert got is not None and got.version == 8
    # The first write made the row under the new RowKey: the other instance's does not write over it.
    with pytest.raises(StateConflictError):
        await tables.put_state(SyncState("f", LONG, 9), read=other)
    assert (await tables.get_state("f", LONG)).version == 8  # type: ignore[union-attr]
    assert (await tables.get_state("f", CRAFTED[0])) is None  # the old row stays the long key's


async def test_a_short_keys_row_where_a_long_keys_old_row_would_be_is_not_the_long_keys(
    tables: TableStateStore,
) -> None:
    await _old_row(tables, CRAFTED[0], CRAFTED[0], 5)
    assert await tables.get_state("f", LONG) is None
    assert (await tables.get_state("f", CRAFTED[0])).version == 5  # type: ignore[union-attr]


async def test_a_long_keys_old_row_left_behind_does_not_answer_for_the_target_row_it_named(
    tables: TableStateStore,
) -> None:
    client = await tables._table("syncstate")
    await _old_row(tables, CRAFTED[0], LONG, 7)
    entity = await client.get_entity("f", CRAFTED[0])
    await client.upsert_entity({**entity, "target_key": '{"k": "old"}'})
    state = await tables.get_state("f", LONG)
    assert state is not None
    state.target_key = '{"k": "new"}'  # the record's row moved; written under the new RowKey
    await tables.put_state(state, read=state)
    assert await tables.find_by_target_key("f", '{"k": "old"}') is None
    assert (await tables.find_by_target_key("f", '{"k": "new"}')).key == LONG  # type: ignore[union-attr]
