"""The unchanged-payload guard's hash: the same payload in any key order, and any changed value seen."""

from datetime import date
from decimal import Decimal
from uuid import UUID

from shared.events import payload_hash

PAYLOAD = {
    "dataAreaId": "usmf",
    "Amount": Decimal("1250.50"),
    "ProjectId": "PRJ-1001",
    "TransactionDate": date(2026, 11, 5),
    "ResourceId": UUID("c0a1e000-0000-4000-8000-000000000f01"),
    "msdyn_Project@odata.bind": None,
    "nested": {"b": 1, "a": [Decimal("2"), "x"]},
}


def test_the_hash_does_not_depend_on_key_order() -> None:
    reordered = dict(reversed(PAYLOAD.items()))
    reordered["nested"] = {"a": [Decimal("2"), "x"], "b": 1}
    assert payload_hash(reordered) == payload_hash(PAYLOAD)


def test_every_changed_value_changes_the_hash() -> None:
    seen = {payload_hash(PAYLOAD)}
    for name, other in [
        ("Amount", Decimal("1250.51")),
        ("Amount", "1250.50"),  # text where the amount was a number
        ("TransactionDate", date(2026, 11, 6)),
        ("ResourceId", UUID("c0a1e000-0000-4000-8000-000000000f02")),
        ("msdyn_Project@odata.bind", "/msdyn_projects(1)"),
        ("nested", {"b": 1, "a": [Decimal("2"), "y"]}),
    ]:
        seen.add(payload_hash({**PAYLOAD, name: other}))
    assert len(seen) == 7
