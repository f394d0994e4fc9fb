from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.azurite import AzuriteTables


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """A running Azurite Table service: an existing one named by AZURITE_TABLE_CONNECTION_STRING, or
    one started for this test session. Missing Azurite fails the tests (PROJOPS_SKIP_AZURITE=1 skips)."""
    existing = os.environ.get("AZURITE_TABLE_CONNECTION_STRING")
    if existing:
        yield existing
        return
    if os.environ.get("PROJOPS_SKIP_AZURITE") == "1":
        pytest.skip("PROJOPS_SKIP_AZURITE=1")
    azurite = AzuriteTables()
    try:
        yield azurite.start()
    finally:
        azurite.stop()
