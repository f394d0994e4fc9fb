"""Infra against code: every trigger's entity exists, every setting is set or documented, no secret
in infra, role assignments on resources, and the checkers themselves catch what they look for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from functions.catalog import CATALOG
from sandbox.host import discover_functions
from shared.settings import Settings
from tests.deployed_settings import import_function_app
from tests.infra.bicep import (
    INFRA,
    array_default,
    errors,
    parse,
    resources,
    secret_literals,
    string_literals,
    text,
    unscoped_role_assignments,
)

# function_app checks the settings in the environment as it is imported, as the host imports it.
function_app = import_function_app()

ROOT = INFRA.parent
BICEP = sorted(INFRA.rglob("*.bicep"))


@pytest.mark.parametrize("path", BICEP, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_parses(path: Path) -> None:
    assert errors(parse(path.read_bytes())) == []


def test_the_parser_sees_syntax_errors() -> None:
    assert errors(parse(b"resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n"))


def declared_entities() -> set[str]:
    flows = array_default(parse((INFRA / "main.bicep").read_bytes()), "flows")
    tree = parse((INFRA / "modules" / "servicebus.bicep").read_bytes())
    by_symbol = {r.symbol: r for r in resources(tree)}
    entities = set()
    for resource in by_symbol.values():
        name = text(resource.properties.get("name", resource.body)).strip("'") if "name" in resource.properties else ""
        names = [name.replace("${flow}", flow) for flow in flows] if resource.loop_over == "flows" else [name]
        if resource.type.endswith("/queues"):
            entities.update(names)
        elif resource.type.endswith("/topics"):
            entities.update(f"topic:{n}" for n in names)
        elif resource.type.endswith("/topics/subscriptions"):
            parent = by_symbol[text(resource.properties["parent"])]
            topic = text(parent.properties["name"]).strip("'")
            entities.update(f"topic:{topic}/{n}" for n in names)
    return entities


def test_every_service_bus_trigger_has_its_entity() -> None:
    declared = declared_entities()
    for function in discover_functions(function_app.app):
        trigger = function.get_trigger()
        assert trigger is not None
        binding = trigger.get_dict_repr()
        if binding["type"] != "serviceBusTrigger":
            continue
        if "queueName" in binding:
            assert binding["queueName"] in declared, function.get_function_name()
        else:
            assert f"topic:{binding['topicName']}" in declared
            assert f"topic:{binding['topicName']}/{binding['subscriptionName']}" in declared


def test_flow_list_matches_the_catalog() -> None:
    assert array_default(parse((INFRA / "main.bicep").read_bytes()), "flows") == [m.name for m in CATALOG.maps]


def env_name(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[0])
    return f"PROJOPS_{field_name.upper()}"


def test_every_required_setting_is_set_or_documented_as_optional() -> None:
    set_in_bicep = set()
    for path in BICEP:
        tree = parse(path.read_bytes())
        set_in_bicep.update(re.findall(r"^\s*([A-Za-z_]+(?:__\w+)?):", path.read_text(), re.M))
        set_in_bicep.update(string_literals(tree))
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    optional = set(re.findall(r"`(PROJOPS_[A-Z_]+)`", deploy.split("## Optional settings", 1)[1].split("\n## ", 1)[0]))
    missing = [
        env_name(f) for f in Settings.model_fields if env_name(f) not in set_in_bicep and env_name(f) not in optional
    ]
    assert missing == []


def test_the_settings_check_fails_for_an_unknown_setting() -> None:
    assert env_name("dataverse_url") == "PROJOPS_DATAVERSE_URL"
    assert env_name("servicebus_namespace") == "ServiceBus__fullyQualifiedNamespace"


def test_no_secret_literal_in_infra() -> None:
    for path in [*BICEP, *INFRA.rglob("*.json")]:
        if path.suffix == ".bicep":
            assert secret_literals(parse(path.read_bytes())) == [], path
        else:
            assert not re.search(r"AccountKey=|SharedAccessKey=", path.read_text()), path


def test_the_secret_scan_finds_a_planted_key() -> None:
    planted = b"var c = 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123=='\n"
    assert secret_literals(parse(planted))


def test_role_assignments_are_scoped_to_resources() -> None:
    tree = parse((INFRA / "modules" / "roles.bicep").read_bytes())
    assignments = [r for r in resources(tree) if r.type == "Microsoft.Authorization/roleAssignments"]
    assert len(assignments) >= 8
    assert unscoped_role_assignments(tree) == []


def test_the_scope_check_rejects_subscription_scope() -> None:
    wide = (
        b"resource r 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        b"  name: 'x'\n  scope: subscription()\n  properties: {}\n}\n"
    )
    assert unscoped_role_assignments(parse(wide)) == ["r"]


def test_operations_doc_has_every_query_infra_runs() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    queries = [
        q
        for q in string_literals(parse((INFRA / "modules" / "alerts.bicep").read_bytes()))
        if q.startswith(("traces", "requests"))
    ]
    workbook = json.loads((INFRA / "modules" / "workbook.json").read_text())
    queries += [item["content"]["query"] for item in workbook["items"] if "query" in item["content"]]
    assert len(queries) >= 7
    for query in queries:
        normalized = re.sub(r"\$\{\w+\}", "", query)
        assert normalized.split("|")[0].strip() in operations
        for stage in normalized.split("|")[1:]:
            assert stage.strip() in operations, stage
