"""The post image register-steps registers, told apart from any other by its alias.

A post image is the row as the operation left it, and Dataverse leaves only empty columns out of it.
The one register-steps registers lists every column the flows read, so beside it Target (what the
request set) adds nothing a flow reads: merged in, it only cost reading every column of a wide
Create a second time. Its alias carries a digest of the columns it lists, so the decoder relies on
an image only where the image lists what the flows read today. An image under any other alias (one
an administrator registered, or ours from before a map read another column) is merged with Target
as any image is, Target's values winning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

# Step images are few: one alias per table the flows read.
_ALIASES = 512


def complete_image_alias(columns: Iterable[str]) -> str:
    """The alias of a post image listing exactly `columns` (letters, digits and "_", as aliases are)."""
    digest = hashlib.sha256(",".join(sorted(columns)).encode()).hexdigest()[:20]
    return f"projops_{digest}"


@lru_cache(maxsize=_ALIASES)
def _alias_of(columns: frozenset[str]) -> str:
    return complete_image_alias(columns)


def holds_every_column(post_images: dict[str, object], columns: frozenset[str] | None) -> bool:
    """True when one of the images is the one register-steps registers for `columns`."""
    return columns is not None and isinstance(post_images.get(_alias_of(columns)), dict)
