"""The template's parameters against the settings they become: what the template accepts, the app accepts
(a setting the app refuses stops it at start-up, so a deployment the template let through would not run)."""

from __future__ import annotations

import os
import re
from typing import cast

import annotated_types
import pytest
import tree_sitter as ts

from shared.settings import Settings, SettingsError, load_settings
from tests.deployed_settings import DEPLOYED_SETTINGS
from tests.infra.bicep import (
    INFRA,
    declaration,
    identifiers,
    lookup,
    modules,
    object_properties,
    parameters,
    parse,
)

MAIN = (INFRA / "main.bicep").read_bytes()
FUNCTION_APP = (INFRA / "modules" / "functionapp.bicep").read_bytes()


def template_settings(tree: ts.Tree) -> dict[str, ts.Node]:
    """The settings main.bicep hands the app module (the object literal inside `union(...)`), by name."""
    app = next(m for m in modules(tree) if m.symbol == "app")
    settings = lookup(app.body, "params", "settings")
    assert settings is not None and settings.type == "call_expression"
    arguments = next(c for c in settings.children if c.type == "arguments")
    literal = next(c for c in arguments.children if c.type == "object")
    return object_properties(literal)


def numeric_settings(tree: ts.Tree) -> list[tuple[str, str]]:
    """(setting, int parameter) for each PROJOPS_* setting whose value is made from an int parameter."""
    params = parameters(tree)
    return [
        (setting, name)
        for setting, value in template_settings(tree).items()
        if setting.startswith("PROJOPS_")
        for name in sorted(identifiers(value) & params.keys())
        if params[name].type == "int"
    ]


def bound_problems(main: bytes) -> list[str]:
    """Int parameters feeding a setting whose @minValue/@maxValue do not lie within its Settings field's
    constraints: a value the template lets through that the app would refuse."""
    tree = parse(main)
    params = parameters(tree)
    problems = []
    for setting, name in numeric_settings(tree):
        field = Settings.model_fields[setting.removeprefix("PROJOPS_").lower()]
        decorators = params[name].decorators
        low = float(decorators["minValue"][0]) if "minValue" in decorators else None
        high = float(decorators["maxValue"][0]) if "maxValue" in decorators else None
        for constraint in field.metadata:
            if isinstance(constraint, annotated_types.Ge) and (low is None or low < cast(float, constraint.ge)):
                problems.append(f"{name}: @minValue {low} below {setting} >= {constraint.ge}")
            if isinstance(constraint, annotated_types.Gt) and (low is None or low <= cast(float, constraint.gt)):
                problems.append(f"{name}: @minValue {low} not above {setting} > {constraint.gt}")
            if isinstance(constraint, annotated_types.Le) and (high is None or high > cast(float, constraint.le)):
                problems.append(f"{name}: @maxValue {high} above {setting} <= {constraint.le}")
            if isinstance(constraint, annotated_types.Lt) and (high is None or high >= cast(float, constraint.lt)):
                problems.append(f"{name}: @maxValue {high} not below {setting} < {constraint.lt}")
    return problems


def test_numeric_parameters_allow_only_what_the_settings_accept() -> None:
    assert ("PROJOPS_RETRY_MAX_ATTEMPTS", "retryMaxAttempts") in numeric_settings(parse(MAIN))
    assert bound_problems(MAIN) == []


def test_the_bounds_check_sees_a_missing_or_wider_bound() -> None:
    declared = re.search(rb"@minValue\((\d+)\)\n@maxValue\((\d+)\)\nparam retryMaxAttempts", MAIN)
    assert declared is not None
    assert bound_problems(MAIN.replace(declared.group(0), b"param retryMaxAttempts"))
    assert bound_problems(MAIN.replace(declared.group(0), b"@minValue(0)\n@maxValue(100)\nparam retryMaxAttempts"))
    assert bound_problems(MAIN.replace(declared.group(0), b"@minValue(1)\n@maxValue(101)\nparam retryMaxAttempts"))


def auth_mode_problems(main: bytes, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each authMode the template allows, with every setting the template sets given a value: the ones
    the app refuses (a setting that mode needs that the template does not set)."""
    tree = parse(main)
    allowed = re.findall(r"'([^']*)'", parameters(tree)["authMode"].decorators["allowed"][0])
    platform = object_properties(declaration(parse(FUNCTION_APP), "variable", "platformSettings"))
    names = set(template_settings(tree)) | set(platform)
    problems = []
    for mode in allowed:
        for name in list(os.environ):
            if name.startswith(("PROJOPS_", "ServiceBus__")):
                monkeypatch.delenv(name)
        for name in names:
            monkeypatch.setenv(name, DEPLOYED_SETTINGS.get(name) or f"{name.lower()}-as-deployed")
        monkeypatch.setenv("PROJOPS_AUTH_MODE", mode)
        try:
            load_settings()
        except SettingsError as error:
            problems.append(f"{mode}: {error}")
    return problems


def test_every_auth_mode_the_template_allows_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_mode_problems(MAIN, monkeypatch) == []
    assert auth_mode_problems(MAIN.replace(b"@allowed(['", b"@allowed(['certificate', '", 1), monkeypatch)
