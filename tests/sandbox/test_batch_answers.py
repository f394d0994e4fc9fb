"""$batch answers read by their declared boundaries only, over real sockets to the Finance simulator.

An answer repeats the rows it wrote (a 201 carries the created row), so whatever a person typed into
a record comes back inside the multipart body: text that looks like a boundary must stay text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.clients.batch import BatchRequest, parse_batch_response
from shared.errors import TransientServiceError
from tests.sandbox.test_awkward_keys import finance_on_a_socket


@pytest.fixture
async def finance() -> AsyncIterator[Any]:
    async with finance_on_a_socket() as pair:
        yield pair


LOOKALIKES = ["Evil --batch_1 Ltd", "--changesetresponse_9a8b--", "A --batchresponse_1f2e-- B"]


async def test_rows_whose_text_looks_like_a_boundary_are_answered_row_by_row(finance: Any) -> None:
    sim, client = finance
    sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
    rows = [
        {"dataAreaId": "usmf", "CustomerAccount": f"C-{n}", "CustomerGroupId": "10", "OrganizationName": name}
        for n, name in enumerate(LOOKALIKES)
    ]
    answers = await client.batch([BatchRequest("POST", "CustomersV3", row) for row in rows])
    assert [(answer.status, answer.content_id) for answer in answers] == [(201, "1"), (201, "2"), (201, "3")]
    assert [answer.body["OrganizationName"] for answer in answers] == LOOKALIKES
    for n, name in enumerate(LOOKALIKES):
        assert sim.get("CustomersV3", dataAreaId="usmf", CustomerAccount=f"C-{n}")["OrganizationName"] == name


def test_a_boundary_splits_only_at_the_start_of_a_line_and_the_answer_must_close() -> None:
    # The answer's own boundary inside a value (JSON holds no raw line break) is body text.
    part = (
        "Content-Type: application/http\r\nContent-ID: 1\r\n\r\nHTTP/1.1 201 Created\r\n"
        'Content-Type: application/json\r\n\r\n{"Name":"x --batchresponse_aa-- y"}\r\n'
    )
    body = f"--batchresponse_aa\r\n{part}--batchresponse_aa--\r\n"
    [answer] = parse_batch_response(body.encode(), 'multipart/mixed; boundary="batchresponse_aa"')
    assert (answer.status, answer.content_id, answer.body) == (201, "1", {"Name": "x --batchresponse_aa-- y"})
    with pytest.raises(ValueError, match="never closes"):
        parse_batch_response(f"--batchresponse_aa\r\n{part}".encode(), "multipart/mixed; boundary=batchresponse_aa")


async def test_an_answer_that_cannot_be_read_is_a_transient_failure_of_the_whole_batch(finance: Any) -> None:
    """Which writes were applied is unknown: tried again (each is an upsert or a create whose repeat
    is answered "already exists"), never raised into redelivery as a bug."""
    _, client = finance
    cut_short = httpx.Response(
        200,
        headers={"Content-Type": "multipart/mixed; boundary=batchresponse_aa"},
        content=b"--batchresponse_aa\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 201 Created\r\n\r\n{",
    )
    with pytest.raises(TransientServiceError, match=r"the \$batch answer could not be read .*never closes"):
        client.batch_answers(cut_short)
