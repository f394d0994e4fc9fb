"""Choose the state store from settings."""

from __future__ import annotations

from shared.settings import Settings, StateBackend
from shared.state.base import StateStore


def create_state_store(settings: Settings) -> StateStore:
    if settings.state_backend is StateBackend.SQLITE:
        from shared.state.sqlite_store import SqliteStateStore

        return SqliteStateStore(
            settings.state_sqlite_path,
            parked_retention_days=settings.parked_retention_days,
            outcome_retention_days=settings.outcome_retention_days,
        )
    from shared.state.table_store import TableStateStore

    retention = settings.parked_retention_days
    history = settings.outcome_retention_days
    if settings.state_tables_connection_string:
        return TableStateStore(
            connection_string=settings.state_tables_connection_string.get_secret_value(),
            parked_retention_days=retention,
            outcome_retention_days=history,
        )
    return TableStateStore(
        account_url=settings.state_tables_account_url, parked_retention_days=retention, outcome_retention_days=history
    )
