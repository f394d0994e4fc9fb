"""The app's host.json, read where the code must agree with the host it runs in.

The Functions host reads host.json for its Service Bus sessions; the flow queues' session buckets
(shared.events) are as many as the sessions it holds at once, so the two are read from one file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Deployed at the root of the app's package, beside function_app.py, as the host requires.
HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"


def service_bus_settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(HOST_JSON.read_text())["extensions"]["serviceBus"]
    return settings


def max_concurrent_sessions() -> int:
    """extensions.serviceBus.maxConcurrentSessions: the sessions of a flow one instance holds at once."""
    return int(service_bus_settings()["maxConcurrentSessions"])


def session_idle_timeout() -> float:
    """extensions.serviceBus.sessionIdleTimeout, in seconds."""
    hours, minutes, seconds = str(service_bus_settings()["sessionIdleTimeout"]).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
