"""Reading Bicep through its tree-sitter grammar: resources, their names, scopes and literals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter as ts
import tree_sitter_bicep

PARSER = ts.Parser(ts.Language(tree_sitter_bicep.language()))
INFRA = Path(__file__).resolve().parents[2] / "infra"


def parse(source: bytes) -> ts.Tree:
    return PARSER.parse(source)


def text(node: ts.Node) -> str:
    return (node.text or b"").decode()


def errors(tree: ts.Tree) -> list[str]:
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(f"line {node.start_point[0] + 1}: {text(node)[:60]!r}")
        stack.extend(node.children)
    return found


@dataclass
class Resource:
    symbol: str
    type: str
    body: ts.Node
    loop_over: str | None = None
    loop_variable: str | None = None
    properties: dict[str, ts.Node] = field(default_factory=dict)


def _object_properties(obj: ts.Node) -> dict[str, ts.Node]:
    props = {}
    for child in obj.children:
        if child.type == "object_property":
            key, value = child.children[0], child.children[-1]
            props[text(key).strip("'")] = value
    return props


def resources(tree: ts.Tree) -> list[Resource]:
    found = []
    for node in tree.root_node.children:
        if node.type != "resource_declaration":
            continue
        symbol = text(node.child_by_field_name("name") or node.children[1])
        type_node = next(c for c in node.children if c.type == "string")
        body = node.children[-1]
        if body.type == "if_statement":
            body = body.children[-1]
        loop_over = loop_variable = None
        if body.type == "for_statement":
            identifiers = [c for c in body.children if c.type in ("identifier", "for_loop_parameters")]
            loop_variable = text(identifiers[0]).strip("()").split(",")[0].strip() if identifiers else None
            loop_over = text(identifiers[1]) if len(identifiers) > 1 else None
            body = next(c for c in body.children if c.type == "object")
        resource = Resource(symbol, text(type_node).strip("'").split("@")[0], body, loop_over, loop_variable)
        if body.type == "object":
            resource.properties = _object_properties(body)
        found.append(resource)
    return found


def string_literals(tree: ts.Tree) -> list[str]:
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "string_content":
            found.append(text(node))
        stack.extend(node.children)
    return found


def array_default(tree: ts.Tree, parameter: str) -> list[str]:
    for node in tree.root_node.children:
        if node.type == "parameter_declaration" and text(node.children[1]) == parameter:
            array = next(c for c in node.children if c.type == "array")
            return [text(c).strip("'") for c in array.children if c.type == "string"]
    raise KeyError(parameter)


SECRET_PATTERNS = [
    re.compile(r"AccountKey=", re.I),
    re.compile(r"SharedAccessKey=", re.I),
    re.compile(r"InstrumentationKey=[0-9a-f-]{36}", re.I),
    re.compile(r"(password|secret|pwd)\s*[:=]\s*\S{6,}", re.I),
    re.compile(r"^[A-Za-z0-9+/]{40,}={0,2}$"),
]


def secret_literals(tree: ts.Tree) -> list[str]:
    return [s for s in string_literals(tree) if any(p.search(s) for p in SECRET_PATTERNS)]


def unscoped_role_assignments(tree: ts.Tree) -> list[str]:
    """Role assignments without a `scope`, or scoped to the subscription or resource group."""
    bad = []
    for resource in resources(tree):
        if resource.type != "Microsoft.Authorization/roleAssignments":
            continue
        scope = resource.properties.get("scope")
        if scope is None or re.match(r"^(subscription|resourceGroup|tenant|managementGroup)\(", text(scope)):
            bad.append(resource.symbol)
    return bad
