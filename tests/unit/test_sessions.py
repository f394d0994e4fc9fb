"""Flow-queue sessions: a record's messages share one session; records spread over the buckets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from shared.events import SESSION_BUCKETS, ChangeEvent, Operation, Source, session_of, use_session_buckets

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


def _event(key: str, version: int) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"e-{key}-{version}", source=Source.DATAVERSE, entity="msdyn_actual", operation=Operation.UPDATE,
        key=key, version=version,
    )  # fmt: skip


def test_every_message_of_a_record_goes_to_the_same_session() -> None:
    key = "c0a1e000-0000-4000-8000-000000000f01"
    sessions = {_event(key, version).for_flow("actuals").session_id for version in range(50)}
    assert sessions == {session_of(key)}
    # Pinned: a record moving to another bucket between releases could run beside its queued messages.
    assert session_of(key) == "records-42"


def test_records_spread_over_every_bucket_and_no_bucket_takes_twice_its_share() -> None:
    counts = Counter(session_of(f"USMF|PRJ-{n:06d}") for n in range(10_000))
    assert len(counts) == SESSION_BUCKETS
    assert max(counts.values()) < 2 * 10_000 / SESSION_BUCKETS


def test_a_session_id_fits_service_bus_whatever_the_key() -> None:
    assert len(session_of("x" * 1024)) <= 128


def test_the_host_takes_every_bucket_of_a_flow_at_once() -> None:
    """Fewer session slots than buckets leave buckets waiting behind sessions that trickle; fewer
    buckets than slots cap a flow's rows in flight: the buckets are host.json's sessions."""
    service_bus = json.loads(HOST_JSON.read_text())["extensions"]["serviceBus"]
    assert service_bus["maxConcurrentSessions"] == SESSION_BUCKETS == 256


def test_a_sandbox_of_other_sessions_buckets_its_records_as_that_host_json_would() -> None:
    before = use_session_buckets(32)
    try:
        assert {session_of(f"USMF|PRJ-{n:06d}") for n in range(2_000)} == {f"records-{b:02d}" for b in range(32)}
    finally:
        use_session_buckets(before)
    assert len({session_of(f"USMF|PRJ-{n:06d}") for n in range(10_000)}) == 256
