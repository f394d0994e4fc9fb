"""What every stage of the write path shares: settings, both clients, state and a lookup cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.cache import TtlCache
from shared.clients.base import DataverseApi, FinanceApi
from shared.maps import System
from shared.settings import Settings
from shared.state.base import StateStore


@dataclass
class Engine:
    """What a flow needs to apply an event: settings, both clients, state, a lookup cache."""

    settings: Settings
    dataverse: DataverseApi
    finance: FinanceApi
    state: StateStore
    cache: TtlCache = field(default_factory=lambda: TtlCache(300.0))

    def client_for(self, system: System) -> DataverseApi | FinanceApi:
        return self.dataverse if system is System.DATAVERSE else self.finance
