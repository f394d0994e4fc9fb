"""A seeded corpus of hostile and broken messages, made from the real samples.

Each item is (name, body, kind): `kind` says which ingress takes it (dataverse or finance). The
corpus is deterministic for a seed, so a failure names an item that can be replayed by hand. It
holds truncations and byte mutations of every sample, and the shapes a broken upstream or an
attacker sends: deep nesting, numbers of thousands of digits or huge exponents where an option set
is read, non-list collections, impossible dates, objects where scalars belong, lone surrogates.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"

DATAVERSE_SAMPLES = (
    "dataverse_webhook_update_contact_remoteexecutioncontext.json",
    "synthetic_dataverse_create_remoteexecutioncontext.json",
    "synthetic_dataverse_delete_remoteexecutioncontext.json",
)
FINANCE_SAMPLES = (
    "synthetic_fno_business_event_sales_invoice_posted.json",
    "synthetic_fno_data_event_onexternalupdated.json",
)

Item = tuple[str, bytes, str]


def _sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _context(name: str = DATAVERSE_SAMPLES[1]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_sample(name))
    return data


def _targeted() -> Iterator[Item]:
    """The shapes that broke the first wave, one each."""
    deep = b'{"MessageName":"Create","PrimaryEntityId":"x","InputParameters":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    yield "deep-nesting", deep, "dataverse"
    yield "deep-nesting-finance", b"[" * 50_000 + b"]" * 50_000, "finance"
    yield "long-number", b'{"MessageName":"Create","Depth":' + b"9" * 20_000 + b"}", "dataverse"

    huge = _context()
    for item in huge["InputParameters"][0]["value"]["Attributes"]:
        if isinstance(item.get("value"), dict) and "OptionSetValue" in str(item["value"].get("__type")):
            item["value"]["Value"] = "__HUGE__"
    text = json.dumps(huge).replace('"__HUGE__"', "1e999999")
    yield "option-set-1e999999", text.encode(), "dataverse"

    not_list = _context()
    not_list["InputParameters"] = "Target"
    yield "input-parameters-a-string", json.dumps(not_list).encode(), "dataverse"
    not_list_images = _context()
    not_list_images["PostEntityImages"] = 42
    yield "post-images-a-number", json.dumps(not_list_images).encode(), "dataverse"
    target_list = _context()
    target_list["InputParameters"] = [{"key": "Target", "value": {"Attributes": 7, "LogicalName": "msdyn_project"}}]
    yield "attributes-a-number", json.dumps(target_list).encode(), "dataverse"

    bad_date = _context()
    bad_date["OperationCreatedOn"] = "/Date(99999999999999999)/"
    yield "date-overflow", json.dumps(bad_date).encode(), "dataverse"
    attribute_date = _context()
    attribute_date["InputParameters"][0]["value"]["Attributes"].append(
        {"key": "createdon", "value": "/Date(99999999999999999999)/"}
    )
    yield "attribute-date-overflow", json.dumps(attribute_date).encode(), "dataverse"

    business = json.loads(_sample(FINANCE_SAMPLES[0]))
    garbage_time = {**business, "EventTimeIso8601": "the day after tomorrow"}
    yield "event-time-garbage", json.dumps(garbage_time).encode(), "finance"
    object_member = {**business, "InvoiceId": {"nested": ["x"]}}
    yield "business-member-an-object", json.dumps(object_member).encode(), "finance"
    object_envelope = {**business, "EventId": {"a": 1}, "ControlNumber": [1]}
    yield "envelope-objects", json.dumps(object_envelope).encode(), "finance"
    yield "finance-empty-list", b"[]", "finance"
    yield "finance-list-of-scalars", b"[1, 2, 3]", "finance"

    surrogate = _context()
    surrogate["InputParameters"][0]["value"]["Attributes"].append({"key": "name", "value": "__LONE__"})
    yield "lone-surrogate", json.dumps(surrogate).replace('"__LONE__"', '"\\ud800"').encode(), "dataverse"
    yield "not-utf8", b'{"MessageName":"\xff\xfe"}', "dataverse"
    yield "nan", b'{"MessageName":"Create","PrimaryEntityId":"x","Depth":NaN}', "dataverse"
    yield "empty", b"", "dataverse"
    yield "xml", b"<Entity/>", "dataverse"


def _mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        action = rng.random()
        if action < 0.4:
            data[at] = rng.randrange(256)
        elif action < 0.7:
            del data[at : at + rng.randint(1, 8)]
        else:
            data[at:at] = rng.choice([b"{", b"[", b'"', b"\\", b"9" * 40, b"null", b",", b"\\u0000"])
    return bytes(data)


def corpus(seed: int = 20261201, mutations: int = 40) -> list[Item]:
    rng = random.Random(seed)
    items = list(_targeted())
    for kind, names in (("dataverse", DATAVERSE_SAMPLES), ("finance", FINANCE_SAMPLES)):
        for name in names:
            body = _sample(name)
            for cut in sorted(rng.sample(range(1, len(body)), 6)):
                items.append((f"{name}:truncated@{cut}", body[:cut], kind))
            for n in range(mutations):
                items.append((f"{name}:mutation{n}", _mutate(rng, body), kind))
    return items
