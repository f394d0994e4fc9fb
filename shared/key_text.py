"""A Finance record's key as one text: its parts joined by `|`, each part's own `|` and `\\` escaped.

The text is the record's state key and its Service Bus session id. Joined as they were, the parts
("V1|X", "INV") and ("V1", "X|INV") made the same text: two records sharing one state row and one
session. A part holding neither character reads as it always did, so existing state keeps its keys.
"""

from __future__ import annotations

from collections.abc import Iterable

SEPARATOR = "|"
_ESCAPE = "\\"


def join_key_parts(parts: Iterable[str]) -> str:
    return SEPARATOR.join(part.replace(_ESCAPE, _ESCAPE * 2).replace(SEPARATOR, _ESCAPE + SEPARATOR) for part in parts)


def split_key_parts(text: str) -> list[str]:
    """The parts join_key_parts joined; a lone trailing backslash stays as it is."""
    parts: list[str] = []
    current: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == _ESCAPE:
            current.append(next(characters, _ESCAPE))
        elif character == SEPARATOR:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts
