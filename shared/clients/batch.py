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


_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^";\s]+))', re.IGNORECASE)
_STATUS = re.compile(r"HTTP/1\.[01] (\d{3})[^\r\n]*")


def _boundary(content_type: str) -> str | None:
    match = _BOUNDARY.search(content_type)
    return None if match is None else match.group(1) or match.group(2)


def _body_parts(text: str, boundary: str) -> list[str]:
    """The parts between the delimiters of one multipart body (RFC 2046 §5.1.1).

    A delimiter is `--boundary` at the start of a line, and only that one boundary: an answer echoes
    the rows it wrote, so a text value that merely looks like a boundary (`--batch_1`) is part of a
    body, not a split."""
    delimiter = re.compile(r"(?:^|\r?\n)--" + re.escape(boundary) + r"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[str] = []
    start: int | None = None
    for match in delimiter.finditer(text):
        if start is not None:
            parts.append(text[start : match.start()])
        if match.group(1):  # the close delimiter: what follows is the epilogue
            return parts
        start = match.end()
    raise ValueError(f"a $batch answer whose multipart body never closes its boundary {boundary!r}")


def _header_pairs(head: str) -> list[tuple[str, str]]:
    pairs = []
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs


def _split_head(part: str) -> tuple[str, str]:
    normalized = part.replace("\r\n", "\n")
    head, _, rest = normalized.partition("\n\n")
    return head, rest


def _responses(text: str, boundary: str, depth: int = 0) -> list[BatchResponse]:
    responses: list[BatchResponse] = []
    for part in _body_parts(text, boundary):
        head, content = _split_head(part)
        mime = {name.lower(): value for name, value in _header_pairs(head)}
        inner = _boundary(mime.get("content-type", ""))
        if mime.get("content-type", "").lower().startswith("multipart/") and inner:
            if depth:  # a changeset holds requests, never another changeset (OData 4.0 §11.7.2)
                raise ValueError("a $batch answer with a changeset inside a changeset")
            responses += _responses(content, inner, depth + 1)
            continue
        answer = content.lstrip("\n")
        status = _STATUS.match(answer)
        if status is None:
            continue  # not an HTTP answer (a preamble or an empty part): nothing to read
        answer_head, payload = _split_head(answer[status.end() :].lstrip("\n"))
        payload = payload.strip()
        responses.append(
            BatchResponse(
                int(status.group(1)),
                dict(_header_pairs(answer_head)),
                loads(payload) if payload.startswith("{") else None,
                mime.get("content-id"),
            )
        )
    return responses


def parse_batch_response(body: bytes, content_type: str) -> list[BatchResponse]:
    """Every answer of a `$batch`, in order, changesets' answers in their place; split only on the
    boundaries the answer declares."""
    boundary = _boundary(content_type)
    if not boundary:
        raise ValueError(f"a $batch answer without a boundary: {content_type!r}")
    return _responses(body.decode("utf-8"), boundary)
