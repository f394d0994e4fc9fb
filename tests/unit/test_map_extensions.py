"""A customer's map extension file: merged into the maps it names, or refused naming the line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from functions.catalog import CATALOG
from functions.map_extensions import MapExtensionError, read_extensions
from shared.cli import maps_markdown
from shared.clients.addressing import literal
from shared.errors import MappingError
from shared.operations.register_steps import plan_steps
from shared.runtime import build_runtime
from shared.settings import Settings

VALID = """\
flows:
  projects-v2:
    fields:
      - source: cnt_costcenter
        target: DimensionDisplayValue
        transform: upper
      - {source: null, target: ProjectGroup, default: "TM"}
    lookups:
      - {kind: currency_code, source: transactioncurrencyid, target: SalesCurrencyCode}
    switch_off: [Description]
    filter: {column: msdyn_projectnumber, op: ne, value: TEMPLATE}
"""


def extend(tmp_path: Path, text: str) -> object:
    path = tmp_path / "map-extensions.yaml"
    path.write_text(text)
    return read_extensions(path, CATALOG)


def test_an_extension_is_merged_and_marked(tmp_path: Path) -> None:
    registry = extend(tmp_path, VALID)
    projects = registry.by_name("projects-v2")  # type: ignore[attr-defined]
    base = CATALOG.by_name("projects-v2")
    added = {f.target: f for f in projects.fields if f.origin}
    assert set(added) == {"DimensionDisplayValue", "ProjectGroup"}
    assert added["DimensionDisplayValue"].transform is not None
    assert added["DimensionDisplayValue"].transform("cc-1") == "CC-1"
    assert "Description" not in {f.target for f in projects.fields}
    assert "Description" in {f.target for f in base.fields}  # the shipped map is untouched
    assert [lk.target for lk in projects.lookups if lk.origin] == ["SalesCurrencyCode"]
    assert projects.target.key_fields == base.target.key_fields and projects.company == base.company
    assert projects.filter is not None and not projects.filter.predicate(
        {"msdyn_projectnumber": "TEMPLATE", **dict.fromkeys(base.filter.columns if base.filter else ())}
    )
    # register-steps sees the extension's columns: an Update of the cost centre reaches the flow.
    [update] = [p for p in plan_steps(registry) if p.message == "Update" and "projects-v2" in p.flow]  # type: ignore[arg-type]
    assert "cnt_costcenter" in (update.filtering_attributes or "")
    shown = maps_markdown([m.describe() for m in registry.maps])  # type: ignore[attr-defined]
    assert "| cnt_costcenter | DimensionDisplayValue | string | upper | **extension map-extensions.yaml** |" in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flows:\n  projects-v3:\n    fields: []\n", "line 2: unknown flow 'projects-v3'"),
        (
            "flows:\n  projects-v2:\n    fields:\n      - {source: a, target: ProjectGroup, transform: title}\n",
            "line 4: unknown transform 'title'",
        ),
        (
            "flows:\n  projects-v2:\n    fields:\n      - {source: a, target: ProjectId}\n",
            "line 4: ProjectId is a key or company field of projects-v2",
        ),
        (
            "flows:\n  projects-v2:\n    fields:\n      - {source: a, target: ProjectName}\n",
            "line 4: projects-v2 already writes ProjectName",
        ),
        ("flows:\n  projects-v2:\n    switch_off: [dataAreaId]\n", "line 3: dataAreaId is a key or company field"),
        (
            "flows:\n  projects-v2:\n    fields:\n      - {source: a, target: B, type: money}\n",
            "line 4: unknown type 'money'",
        ),
        (
            "flows:\n  projects-v2:\n    lookups:\n      - {kind: magic, source: a, target: B}\n",
            "line 4: unknown lookup kind 'magic'",
        ),
        ("flows:\n  projects-v2:\n    company: x\n", "line 3: flow projects-v2 has no setting 'company'"),
        ("flows:\n  projects-v2:\n    fields: [\n", "line 4: not YAML"),
        (
            "flows:\n  projects-v2:\n    filter: {column: 'X eq 1 or true', value: 1}\n",
            "line 3: a filter's column 'X eq 1 or true' is not a column or field name",
        ),
        (
            "flows:\n  projects-v2:\n    fields:\n      - {source: 'a,b', target: ProjectGroup}\n",
            "line 4: a field's source must be a column name",
        ),
    ],
)
def test_a_wrong_extension_is_refused_naming_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MapExtensionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extend(tmp_path, text)


def test_the_app_does_not_start_with_a_wrong_extension_file(tmp_path: Path) -> None:
    path = tmp_path / "map-extensions.yaml"
    path.write_text("flows:\n  projects-v3: {}\n")
    settings = Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": "none",
            "state_backend": "sqlite",
            "state_sqlite_path": str(tmp_path / "state.db"),
            "bus_backend": "local",
            "PROJOPS_MAP_EXTENSIONS": str(path),
        }
    )
    with pytest.raises(MapExtensionError, match=r"map-extensions.yaml line 2: unknown flow 'projects-v3'"):
        build_runtime(settings, sender=object())  # type: ignore[arg-type]


def test_a_filter_on_a_number_with_a_fraction_compares_exactly_and_null_is_null(tmp_path: Path) -> None:
    registry = extend(
        tmp_path,
        "flows:\n  resource-roles:\n    filter: {column: cnt_rate, op: in, value: [1.5, null]}\n",
    )
    row_filter = registry.by_name("resource-roles").filter  # type: ignore[attr-defined]
    assert row_filter is not None
    assert row_filter.predicate({"cnt_rate": Decimal("1.50"), **dict.fromkeys(row_filter.columns[:-1])})
    assert row_filter.odata == "cnt_rate eq 1.5 or cnt_rate eq null"
    assert literal(None) == "null"
    with pytest.raises(MappingError, match="binary float"):
        literal(0.1)
