"""OData `$batch` of atomic changesets: build the multipart request, read the multipart answer.

Both services take the same format (formats.md §4.3; Finance follows the OData spec): a failed
changeset is rolled back whole and the answer carries the failing part's own error. A document goes
as one changeset (all its lines or none); independent rows go as one changeset each, so one bad row
is rolled back alone. Content-IDs number the requests across the whole batch (OData 4.01 wants them
unique in the batch; 4.0 only within a changeset, which this satisfies too), so every answer names
its request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.jsonio import dumps, loads


@dataclass(frozen=True)
class BatchRequest:
    method: str  # POST | PATCH | DELETE
    url: str  # relative to the service root, e.g. "ProjectsV2" or "msdyn_actuals(<id>)"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    status: int
    headers: dict[str, str]
    body: Any
    content_id: str | None = None


def build_batch(changesets: Sequence[Sequence[BatchRequest]], base_path: str) -> tuple[bytes, str]:
    batch = f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    number = 0
    for requests in changesets:
        changeset = f"changeset_{uuid.uuid4()}"
        lines += [f"--{batch}", f'Content-Type: multipart/mixed; boundary="{changeset}"', ""]
        for request in requests:
            number += 1
            lines += [
                f"--{changeset}",
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                f"Content-ID: {number}",
                "",
                f"{request.method} {base_path}{request.url} HTTP/1.1",
                "Content-Type: application/json; type=entry",
                *[f"{name}: {value}" for name, value in request.headers.items()],
                "",
                dumps(request.body) if request.body is not None else "",
            ]
        lines.append(f"--{changeset}--")
    lines += [f"--{batch}--", ""]
    return "\r\n".join(lines).encode(), f'multipart/mixed; boundary="{batch}"'


def parse_batch_response(body: bytes, content_type: str) -> list[BatchResponse]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError(f"a $batch answer without a boundary: {content_type!r}")
    text = body.decode("utf-8")
    responses: list[BatchResponse] = []
    for part in re.split(r"--[\w.-]*(?:batchresponse|changesetresponse|batch|changeset)_[0-9a-fA-F-]+(?:--)?", text):
        status_line = re.search(r"HTTP/1\.1 (\d{3})[^\r\n]*", part)
        if not status_line:
            continue
        rest = part[status_line.end() :].replace("\r\n", "\n").lstrip("\n")
        head, _, payload = rest.partition("\n\n")
        headers = {}
        for line in head.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        payload = payload.strip()
        # The part's own MIME headers (before the status line) carry the Content-ID of its request.
        content_id = re.search(r"Content-ID:\s*(\S+)", part[: status_line.start()], re.IGNORECASE)
        responses.append(
            BatchResponse(
                int(status_line.group(1)),
                headers,
                loads(payload) if payload.startswith("{") else None,
                content_id.group(1) if content_id else None,
            )
        )
    return responses
