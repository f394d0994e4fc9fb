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
    api_version: str = ""


def _object_properties(obj: ts.Node) -> dict[str, ts.Node]:
    props = {}
    for child in obj.children:
        if child.type == "object_property":
            key, value = child.children[0], child.children[-1]
            props[text(key).strip("'")] = value
    return props


def object_properties(obj: ts.Node) -> dict[str, ts.Node]:
    """An object literal's properties by key (quotes stripped)."""
    return _object_properties(obj)


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
        resource_type, _, api_version = text(type_node).strip("'").partition("@")
        resource = Resource(symbol, resource_type, body, loop_over, loop_variable, api_version=api_version)
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


@dataclass
class Module:
    symbol: str
    path: str
    body: ts.Node
    properties: dict[str, ts.Node] = field(default_factory=dict)


def modules(tree: ts.Tree) -> list[Module]:
    found = []
    for node in tree.root_node.children:
        if node.type != "module_declaration":
            continue
        path = text(next(c for c in node.children if c.type == "string")).strip("'")
        body = node.children[-1]
        if body.type == "if_statement":
            body = body.children[-1]
        found.append(Module(text(node.children[1]), path, body, _object_properties(body)))
    return found


def lookup(node: ts.Node | None, *path: str) -> ts.Node | None:
    """The value at `path` inside an object literal, or None."""
    for key in path:
        if node is None or node.type != "object":
            return None
        node = _object_properties(node).get(key)
    return node


def literal(node: ts.Node | None) -> str | None:
    """A string, boolean or number literal's text (strings unquoted); None for anything else."""
    if node is None or node.type not in ("string", "boolean", "number"):
        return None
    if node.type == "string" and any(c.type == "interpolation" for c in node.children):
        return None
    return text(node).strip("'")


def declaration(tree: ts.Tree, kind: str, name: str) -> ts.Node:
    """The value of `var name = ...` (kind "variable") or the default of `param name ... = ...` ("parameter")."""
    for node in tree.root_node.children:
        if node.type == f"{kind}_declaration" and text(node.children[1]) == name:
            if "=" not in [c.type for c in node.children]:
                raise KeyError(f"{kind} {name} has no value")
            return node.children[-1]
    raise KeyError(name)


def call_arguments(node: ts.Node, function: str) -> list[str]:
    """Arguments (as source text) of a call such as union(a, b, c); KeyError if it is another expression."""
    if node.type != "call_expression" or text(node.children[0]) != function:
        raise KeyError(f"not a {function}() call: {text(node)[:60]!r}")
    arguments = next(c for c in node.children if c.type == "arguments")
    return [text(c) for c in arguments.children if c.type not in ("(", ")", ",")]


# The function app's hardening (issue #16): each property path on Microsoft.Web/sites and its value.
SITE_HARDENING = {
    ("properties", "httpsOnly"): "true",
    ("properties", "siteConfig", "minTlsVersion"): "1.2",
    ("properties", "siteConfig", "scmMinTlsVersion"): "1.2",
    ("properties", "siteConfig", "ftpsState"): "Disabled",
}


def site_hardening_problems(tree: ts.Tree) -> list[str]:
    problems = []
    sites = [r for r in resources(tree) if r.type == "Microsoft.Web/sites"]
    for site in sites:
        for path, wanted in SITE_HARDENING.items():
            found = literal(lookup(site.body, *path))
            if found != wanted:
                problems.append(f"{site.symbol}: {'.'.join(path)} is {found!r}, wanted {wanted!r}")
        policies = {
            literal(r.properties.get("name")): literal(lookup(r.body, "properties", "allow"))
            for r in resources(tree)
            if r.type == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
            and text(r.properties.get("parent", r.body)) == site.symbol
        }
        for policy in ("ftp", "scm"):
            if policies.get(policy) != "false":
                problems.append(f"{site.symbol}: basic publishing credentials for {policy} not off")
    return problems


# Built-in roles the app's identity must not hold: Owner, Contributor, Website Contributor, User
# Access Administrator, Role Based Access Control Administrator.
BROAD_ROLES = {
    "8e3af657-a8ff-443b-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "de139f84-1756-47ae-9be6-808fbbe84772",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
}


# What the custom roles may grant: the app's own settings (pause/resume), queue counts (status).
NARROW_ACTIONS = (
    r"Microsoft\.Web/sites/(read|config/(read|write|list/action))"
    r"|Microsoft\.ServiceBus/namespaces/queues/read"
)


def broad_role_problems(tree: ts.Tree) -> list[str]:
    """Broad built-in role ids anywhere, and custom roles with wildcards or actions beyond NARROW_ACTIONS."""
    problems = [f"built-in role {s}" for s in string_literals(tree) if s.lower() in BROAD_ROLES]
    for resource in resources(tree):
        if resource.type != "Microsoft.Authorization/roleDefinitions":
            continue
        permissions = lookup(resource.body, "properties", "permissions")
        actions = [s for s in string_literals_of(permissions) if "/" in s or "*" in s] if permissions else []
        for action in actions:
            if "*" in action or not re.fullmatch(NARROW_ACTIONS, action):
                problems.append(f"{resource.symbol}: action {action}")
    return problems


def string_literals_of(node: ts.Node) -> list[str]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "string_content":
            found.append(text(current))
        stack.extend(current.children)
    return found


def sas_problems(tree: ts.Tree) -> list[str]:
    """Shared access rules other than send-only ones on an entity, and any use of the namespace's root key."""
    problems = [s for s in string_literals(tree) if "RootManageSharedAccessKey" in s]
    for resource in resources(tree):
        if not resource.type.endswith("/authorizationRules") or "ServiceBus" not in resource.type:
            continue
        if resource.type == "Microsoft.ServiceBus/namespaces/authorizationRules":
            problems.append(f"{resource.symbol}: a namespace-wide rule")
        rights = lookup(resource.body, "properties", "rights")
        if rights is None or string_literals_of(rights) != ["Send"]:
            problems.append(f"{resource.symbol}: rights other than Send only")
    return problems


@dataclass
class Parameter:
    name: str
    type: str
    # Each decorator's name and its arguments as source text, e.g. {"minValue": ["1"]}.
    decorators: dict[str, list[str]]
    default: ts.Node | None


def parameters(tree: ts.Tree) -> dict[str, Parameter]:
    """Every `param` with its type, decorators (the `decorators` node just before it) and default."""
    found = {}
    decorators: dict[str, list[str]] = {}
    for node in tree.root_node.children:
        if node.type == "decorators":
            decorators = {}
            for decorator in node.children:
                call = next((c for c in decorator.children if c.type == "call_expression"), None)
                if call is not None:
                    arguments = next(c for c in call.children if c.type == "arguments")
                    decorators[text(call.children[0])] = [
                        text(c) for c in arguments.children if c.type not in ("(", ")", ",")
                    ]
            continue
        if node.type == "parameter_declaration":
            name = text(node.children[1])
            default = node.children[-1] if "=" in [c.type for c in node.children] else None
            found[name] = Parameter(name, text(node.children[2]), decorators, default)
        decorators = {}
    return found


def identifiers(node: ts.Node) -> set[str]:
    """Every identifier an expression mentions."""
    found = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier":
            found.add(text(current))
        stack.extend(current.children)
    return found
