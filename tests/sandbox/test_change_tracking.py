"""The Dataverse simulator's change tracking against Microsoft's published responses: the first read
with a delta link, then the changes since, a removed row as $deletedEntity; a table without Track
changes is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.jsonio import dumps
from tests.sandbox.test_simulators import dataverse  # noqa: F401  (the simulator fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRACK = {"Prefer": "odata.track-changes"}


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"dataverse_webapi_change_tracking_{name}_response.json").read_text()))


async def test_a_tracked_table_answers_as_the_published_samples(dataverse: Any) -> None:  # noqa: F811
    sim, client, _ = dataverse
    sim.change_tracking.add("account")
    kept = (await client.post("accounts", content=dumps({"name": "Monte Orton", "telephone1": "555000"}))).headers
    gone = (await client.post("accounts", content=dumps({"name": "Gone Soon"}))).headers
    kept_id = kept["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    gone_id = gone["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    first = (await client.get("accounts", params={"$select": "name,telephone1"}, headers=TRACK)).json()
    published = sample("initial")
    assert set(first) == set(published)
    assert first["@odata.context"].endswith("$metadata#accounts(name,telephone1)")
    assert {row["accountid"] for row in first["value"]} == {kept_id, gone_id}
    assert set(first["value"][0]) == {"@odata.etag", "name", "telephone1", "accountid"}
    link = first["@odata.deltaLink"]
    assert parse_qs(urlsplit(link).query)["$select"] == ["name,telephone1"] and "$deltatoken=" in link

    await client.patch(f"accounts({kept_id})", content=dumps({"telephone1": "555001"}))
    await client.delete(f"accounts({gone_id})")
    delta = (await client.get(link)).json()
    published = sample("delta")
    assert set(delta) == set(published)
    assert delta["@odata.context"].endswith("$metadata#accounts(name,telephone1)/$delta")
    changed, removed = delta["value"]
    assert changed["accountid"] == kept_id and changed["telephone1"] == "555001"
    published_removed = published["value"][1]
    assert set(removed) == set(published_removed) and removed["reason"] == "deleted" and removed["id"] == gone_id
    assert removed["@odata.context"].endswith("$metadata#accounts/$deletedEntity")
    # Nothing since: an empty delta, and a new link.
    quiet = (await client.get(delta["@odata.deltaLink"])).json()
    assert quiet["value"] == [] and quiet["@odata.deltaLink"]


async def test_a_table_without_track_changes_is_refused(dataverse: Any) -> None:  # noqa: F811
    _, client, _ = dataverse
    response = await client.get("accounts", headers=TRACK)
    assert response.status_code == 400
    assert "Change tracking is not enabled for the entity account" in response.json()["error"]["message"]


async def test_a_delta_link_older_than_the_organizations_expiry_is_refused(dataverse: Any) -> None:  # noqa: F811
    """ExpireChangeTrackingInDays (7 by default): a token past it throws, and a full sync is needed."""
    sim, client, _ = dataverse
    sim.change_tracking.add("account")
    await client.post("accounts", content=dumps({"name": "Monte Orton"}))
    link = (await client.get("accounts", params={"$select": "name"}, headers=TRACK)).json()["@odata.deltaLink"]
    issued = datetime.now(UTC)

    sim.change_tracking_clock = lambda: issued + timedelta(days=6, hours=23)
    assert (await client.get(link)).status_code == 200
    sim.change_tracking_clock = lambda: issued + timedelta(days=7, minutes=1)
    refused = await client.get(link)
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. Please perform a full sync.",
    }
    # A fresh tracked read is answered, with a link that holds for another week.
    fresh = await client.get("accounts", params={"$select": "name"}, headers=TRACK)
    assert fresh.status_code == 200 and (await client.get(fresh.json()["@odata.deltaLink"])).status_code == 200
    sim.expire_change_tracking_days = 30
    assert (await client.get(link)).status_code == 200
