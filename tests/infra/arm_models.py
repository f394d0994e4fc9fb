"""Bicep property names against Microsoft's published resource definitions.

The azure-mgmt-* packages are generated from the Azure REST API specifications: each model class
knows its resource's JSON property names (rest names) and nested types. A property the Bicep sets
that the model lacks is a typo or a property of another resource type or API version, which
Resource Manager ignores or rejects only at deployment time.

The packages carry their newest API version only, not every version the Bicep names, so this checks
names against that version (names are rarely removed between versions)."""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

import azure.mgmt.keyvault.models as keyvault
import azure.mgmt.servicebus.models as servicebus
import azure.mgmt.storage.models as storage
import azure.mgmt.web.models as web
import tree_sitter as ts

from tests.infra.bicep import Resource, text

MODELS: dict[str, type] = {
    "Microsoft.Web/serverfarms": web.AppServicePlan,
    "Microsoft.Web/sites": web.Site,
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": web.CsmPublishingCredentialsPoliciesEntity,
    "Microsoft.ServiceBus/namespaces": servicebus.SBNamespace,
    "Microsoft.ServiceBus/namespaces/topics": servicebus.SBTopic,
    "Microsoft.ServiceBus/namespaces/topics/subscriptions": servicebus.SBSubscription,
    "Microsoft.ServiceBus/namespaces/queues": servicebus.SBQueue,
    "Microsoft.ServiceBus/namespaces/topics/authorizationRules": servicebus.SBAuthorizationRule,
    "Microsoft.ServiceBus/namespaces/queues/authorizationRules": servicebus.SBAuthorizationRule,
    "Microsoft.KeyVault/vaults": keyvault.VaultCreateOrUpdateParameters,
    "Microsoft.KeyVault/vaults/secrets": keyvault.SecretCreateOrUpdateParameters,
    "Microsoft.Storage/storageAccounts": storage.StorageAccountCreateParameters,
    "Microsoft.Storage/storageAccounts/blobServices": storage.BlobServiceProperties,
    "Microsoft.Storage/storageAccounts/blobServices/containers": storage.BlobContainer,
    "Microsoft.Storage/storageAccounts/tableServices": storage.TableServiceProperties,
    "Microsoft.Storage/storageAccounts/tableServices/tables": storage.Table,
}

# Bicep's own keys on a resource body, not Resource Manager properties.
BICEP_KEYS = {"name", "parent", "scope", "dependsOn"}


def _fields(model: type) -> dict[str, Any]:
    """rest name -> annotated type, for a generated model class."""
    model()  # the generated base computes _attr_to_rest_field on first instantiation
    rest = {attr: field._rest_name for attr, field in model._attr_to_rest_field.items()}  # type: ignore[attr-defined]
    module = sys.modules[model.__module__]
    package = sys.modules[module.__name__.rsplit(".", 1)[0]]
    hints = typing.get_type_hints(model, globalns={**vars(module), "_models": package})
    return {name: hints.get(attr) for attr, name in rest.items()}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and any(
        base.__module__.endswith("model_base") for base in annotation.__mro__[1:]
    )


def _unwrap(annotation: Any) -> tuple[str, Any]:
    """('model', cls), ('list', inner), ('dict', inner) or ('scalar', None)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in inner if _is_model(a)]
        return _unwrap(models[0] if models else inner[0]) if inner else ("scalar", None)
    if origin in (list, typing.List):  # noqa: UP006 - the generated code uses both
        return "list", typing.get_args(annotation)[0]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "dict", typing.get_args(annotation)[1]
    if _is_model(annotation):
        return "model", annotation
    return "scalar", None


def _objects(node: ts.Node) -> list[ts.Node]:
    """Object literals a value holds: itself, an array's elements, a for loop's body."""
    if node.type == "object":
        return [node]
    if node.type == "array":
        return [c for c in node.children if c.type == "object"]
    if node.type == "for_statement":
        return [c for c in node.children if c.type == "object"]
    return []


def _check(node: ts.Node, annotation: Any, path: str, problems: list[str]) -> None:
    kind, inner = _unwrap(annotation)
    if kind == "list":
        for element in _objects(node) if node.type != "object" else []:
            _check(element, inner, f"{path}[]", problems)
        return
    if kind == "dict":
        for child in node.children if node.type == "object" else []:
            if child.type == "object_property":
                _check(child.children[-1], inner, f"{path}.{text(child.children[0])}", problems)
        return
    if kind != "model":
        return
    for obj in _objects(node):
        fields = _fields(inner)
        for child in obj.children:
            if child.type != "object_property":
                continue
            key = text(child.children[0]).strip("'")
            if key not in fields:
                problems.append(f"{path}.{key}: no such property on {inner.__name__}")
                continue
            _check(child.children[-1], fields[key], f"{path}.{key}", problems)


def unknown_properties(resource: Resource) -> list[str]:
    """Properties the resource's body sets that its published definition does not have."""
    model = MODELS.get(resource.type)
    if model is None or resource.body.type != "object":
        return []
    problems: list[str] = []
    fields = _fields(model)
    for key, value in resource.properties.items():
        if key in BICEP_KEYS:
            continue
        if key not in fields:
            problems.append(f"{resource.symbol}.{key}: no such property on {model.__name__}")
        else:
            _check(value, fields[key], f"{resource.symbol}.{key}", problems)
    return problems
