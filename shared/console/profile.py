"""A profile: the settings a command line needs to reach one deployment (or the served sandbox), as a file.

The format is an env file (KEY=VALUE a line, # comments), so a shell can also `set -a; . FILE`.
`--profile FILE` or PROJOPS_PROFILE names it; what the environment already sets wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shared.errors import OperatorError

PROFILE_SETTING = "PROJOPS_PROFILE"
ADMIN_URL_SETTING = "PROJOPS_ADMIN_URL"
ADMIN_KEY_SETTING = "PROJOPS_ADMIN_KEY"


def read_profile(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise OperatorError(f"cannot read the profile {path}: {exc.strerror or exc}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise OperatorError(f"{path} line {number}: expected NAME=VALUE, not {line[:60]!r}")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def apply_profile(path: str | None) -> None:
    """Load the named profile (or PROJOPS_PROFILE's) into the environment, under what is set already."""
    path = path or os.environ.get(PROFILE_SETTING)
    if not path:
        return
    for name, value in read_profile(path).items():
        os.environ.setdefault(name, value)


def write_profile(path: Path, values: Mapping[str, str], *, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "# Use: export PROJOPS_PROFILE=<this file>  (or: set -a; . <this file>; set +a)"]
    lines += [f"{name}={value}" for name, value in values.items()]
    # It holds the admin key: created readable by its owner alone, never for a moment by the umask's.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that was there keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
