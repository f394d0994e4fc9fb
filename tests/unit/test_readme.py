"""The README's flow table and provenance counts are the maps', not a copy that drifts from them."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from functions.catalog import CATALOG
from shared.maps import System

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_flow_table_lists_every_flow_with_its_finance_entity_set() -> None:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|.*\| `(\w+)` \|$", README, re.M)
    expected = []
    for table_map in CATALOG.maps:
        finance = table_map.target if table_map.target.system is System.FINANCE else table_map.source
        expected.append((table_map.name, finance.entity_set))
    assert rows == expected


def test_the_provenance_counts_are_the_maps() -> None:
    fields = Counter(f.provenance.value for m in CATALOG.maps for f in m.fields)
    lookups = Counter(lk.provenance.value for m in CATALOG.maps for lk in m.lookups)
    for level in ("documented", "metadata", "inferred"):
        row = re.search(rf"^\| `{level}` \| [^|]+ \| (\d+) \| (\d+) \|$", README, re.M)
        assert row is not None, level
        assert (int(row.group(1)), int(row.group(2))) == (fields[level], lookups[level]), level
