"""A create Dataverse applied whose answer was lost: its repeat finds the key taken by the row it made.

A key Dataverse cannot address in a URL (a vendor's invoice number "INV/2024/7") is written by $filter
then POST, and the request engine sends a POST again after a timeout or a dropped connection. The
repeat is refused as a duplicate key (0x80060892, formats.md §4.4); the row holding the key is the
one the lost attempt created, so it is found again and written by id, never parked as existing. A
duplicate on a first attempt is another record's key, and still refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sandbox.dataverse.server import DataverseSimulator
from sandbox.odata import Faults, LoggedRequest
from shared.auth import StaticToken
from shared.clients.dataverse import DataverseClient
from shared.clients.throttle import forget_limiters
from shared.errors import PreconditionFailedError
from shared.settings import Settings

TOKEN = "integration-token"
USER = "aa000000-0000-4000-8000-000000000002"
INVOICES = "msdyn_projectvendorinvoices"
NUMBER = "INV/2024/7"


@dataclass
class PostFaults(Faults):
    """What happens to the first POST: applied and its answer lost, or preceded by another writer."""

    log: list[LoggedRequest] = field(default_factory=list)
    lose_answer: bool = False
    before: Callable[[], object] | None = None

    def roll(self, share: float) -> bool:
        if not share or not self.log or self.log[-1].method != "POST":
            return False
        if self.before is not None:
            before, self.before = self.before, None
            before()
            return False
        lose, self.lose_answer = self.lose_answer, False
        return lose


def settings() -> Settings:
    return Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": "none",
            "state_backend": "sqlite",
            "bus_backend": "local",
            "companies": ["USMF"],
            "dataverse_bulk_rows": 0,
            "http_max_retries": 4,
        }
    )


async def no_sleep(_seconds: float) -> None:
    return None


@dataclass
class Env:
    sim: DataverseSimulator
    client: DataverseClient
    faults: PostFaults
    vendor: str

    def key(self, number: str = NUMBER) -> dict[str, Any]:
        return {"msdyn_vendorinvoicenumber": number, "_msdyn_vendor_value": self.vendor}

    def binds(self) -> dict[str, tuple[str, str]]:
        return {"_msdyn_vendor_value": ("msdyn_vendor@odata.bind", f"/accounts({self.vendor})")}

    def invoices(self) -> list[tuple[str, str]]:
        return sorted(
            (row["msdyn_vendorinvoicenumber"], row["msdyn_description"])
            for row in self.sim.rows("msdyn_projectvendorinvoice")
        )


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    forget_limiters()
    # Rolled only for the one fault that is not zero; what it does is PostFaults' to say.
    faults = PostFaults(drop_after_share=1.0)
    sim = DataverseSimulator(users={TOKEN: USER}, faults=faults)
    faults.log = sim.requests
    await sim.start()
    vendor = sim.seed("account", {"name": "Vendor A"})
    client = DataverseClient(
        settings().model_copy(update={"dataverse_url": sim.url}), StaticToken(TOKEN), sleep=no_sleep
    )
    try:
        yield Env(sim, client, faults, vendor)
    finally:
        await client.close()
        await sim.stop()


def writes(env: Env) -> list[tuple[str, str, int]]:
    return [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in env.sim.requests if r.method != "GET"]


async def test_a_create_whose_answer_was_lost_is_written_by_id_not_parked(env: Env) -> None:
    env.faults.lose_answer = True
    result = await env.client.write(INVOICES, env.key(), {"msdyn_description": "first"}, "upsert", env.binds())
    assert env.invoices() == [(NUMBER, "first")]
    [row] = env.sim.rows("msdyn_projectvendorinvoice")
    assert result.entity_id == row["msdyn_projectvendorinvoiceid"]
    assert writes(env) == [
        ("POST", INVOICES, -2),
        ("POST", INVOICES, 412),
        ("PATCH", f"{INVOICES}({row['msdyn_projectvendorinvoiceid']})", 204),
    ]


async def test_a_changeset_whose_answer_was_lost_is_sent_again_by_id_not_parked(env: Env) -> None:
    env.sim.seed(
        "msdyn_projectvendorinvoice",
        {"msdyn_vendorinvoicenumber": "INV/2024/6", "msdyn_vendor@odata.bind": f"/accounts({env.vendor})"},
    )
    env.faults.lose_answer = True
    rows = [(env.key("INV/2024/6"), {"msdyn_description": "sixth"}), (env.key(), {"msdyn_description": "seventh"})]
    await env.client.write_many(INVOICES, rows, 500, [env.binds(), env.binds()])
    assert env.invoices() == [("INV/2024/6", "sixth"), (NUMBER, "seventh")]
    assert writes(env) == [("POST", "$batch", -2), ("POST", "$batch", 400), ("POST", "$batch", 200)]
    resent = env.sim.requests[-1].body
    assert resent.count("PATCH ") == 2 and "POST " not in resent


async def test_a_key_another_record_took_first_is_still_refused(env: Env) -> None:
    env.faults.before = lambda: env.sim.seed(
        "msdyn_projectvendorinvoice",
        {
            "msdyn_vendorinvoicenumber": NUMBER,
            "msdyn_vendor@odata.bind": f"/accounts({env.vendor})",
            "msdyn_description": "theirs",
        },
    )
    with pytest.raises(PreconditionFailedError) as refused:
        await env.client.write(INVOICES, env.key(), {"msdyn_description": "ours"}, "upsert", env.binds())
    assert refused.value.code == "0x80060892"
    assert env.invoices() == [(NUMBER, "theirs")]
