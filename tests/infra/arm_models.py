"""Bicep property names against Microsoft's published resource definitions, for the exact API version.

The azure-mgmt-* packages are generated from the Azure REST API specifications: each model class
knows its resource's JSON property names (rest names) and nested types, for one API version. A
property the Bicep sets that the model lacks is a typo or a property of another resource type or API
version, which Resource Manager ignores or rejects only at deployment time.

Every resource type the Bicep declares has an entry in PUBLISHED: the model of its request body and
the module whose source names the API version that model was generated for (a multi-API package's
`vYYYY_MM_DD` subpackage, a single-version package's configuration, or for Azure Monitor, whose
package mixes versions, the operations of that resource type). A resource declared at another API
version is reported, so the Bicep and the checked definitions cannot drift apart.

The packages come in two generations: the newer keep rest names on `_attr_to_rest_field` with typed
annotations, the older (msrest) keep `_attribute_map` with flattened keys (`properties.httpsOnly`) and
type strings (`[NameValuePair]`, `{str}`). Both are read into the same nested form."""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.mgmt.applicationinsights.v2020_02_02.models as insights_components
import azure.mgmt.applicationinsights.v2023_06_01.models as insights_workbooks
import azure.mgmt.authorization.v2022_04_01.models as authorization
import azure.mgmt.keyvault.models as keyvault
import azure.mgmt.loganalytics.models as loganalytics
import azure.mgmt.monitor.models as monitor
import azure.mgmt.msi.v2024_11_30.models as msi
import azure.mgmt.network.models as network
import azure.mgmt.privatedns.models as privatedns
import azure.mgmt.servicebus.models as servicebus
import azure.mgmt.storage.models as storage
import azure.mgmt.web.models as web
import tree_sitter as ts

from tests.infra.bicep import Resource, text


@dataclass(frozen=True)
class Published:
    model: type
    # The module (or module:function, for a package whose operations mix versions) whose source names
    # the one API version the model belongs to.
    version_source: str


def _published(model: type, version_source: str | None = None) -> Published:
    return Published(model, version_source or model.__module__)


# One module of operations for all of azure-mgmt-network, most at one version, a few at older ones.
NETWORK_OPERATIONS = "azure.mgmt.network.operations._operations"
PUBLISHED: dict[str, Published] = {
    "Microsoft.Web/serverfarms": _published(web.AppServicePlan, "azure.mgmt.web._configuration"),
    "Microsoft.Web/sites": _published(web.Site, "azure.mgmt.web._configuration"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": _published(
        web.CsmPublishingCredentialsPoliciesEntity, "azure.mgmt.web._configuration"
    ),
    **{
        f"Microsoft.ServiceBus/namespaces{path}": _published(model, "azure.mgmt.servicebus._configuration")
        for path, model in (
            ("", servicebus.SBNamespace),
            ("/topics", servicebus.SBTopic),
            ("/topics/subscriptions", servicebus.SBSubscription),
            ("/queues", servicebus.SBQueue),
            ("/topics/authorizationRules", servicebus.SBAuthorizationRule),
            ("/queues/authorizationRules", servicebus.SBAuthorizationRule),
        )
    },
    "Microsoft.KeyVault/vaults": _published(
        keyvault.VaultCreateOrUpdateParameters, "azure.mgmt.keyvault._configuration"
    ),
    "Microsoft.KeyVault/vaults/secrets": _published(
        keyvault.SecretCreateOrUpdateParameters, "azure.mgmt.keyvault._configuration"
    ),
    **{
        f"Microsoft.Storage/storageAccounts{path}": _published(model, "azure.mgmt.storage._configuration")
        for path, model in (
            ("", storage.StorageAccountCreateParameters),
            ("/blobServices", storage.BlobServiceProperties),
            ("/blobServices/containers", storage.BlobContainer),
            ("/tableServices", storage.TableServiceProperties),
            ("/tableServices/tables", storage.Table),
        )
    },
    "Microsoft.Insights/components": _published(insights_components.ApplicationInsightsComponent),
    "Microsoft.Insights/workbooks": _published(insights_workbooks.Workbook),
    "Microsoft.Insights/metricAlerts": _published(
        monitor.MetricAlertResource, "azure.mgmt.monitor.operations._metric_alerts_operations"
    ),
    "Microsoft.Insights/scheduledQueryRules": _published(
        monitor.ScheduledQueryRuleResource, "azure.mgmt.monitor.operations._scheduled_query_rules_operations"
    ),
    "Microsoft.OperationalInsights/workspaces": _published(
        loganalytics.Workspace, "azure.mgmt.loganalytics._configuration"
    ),
    "Microsoft.Network/virtualNetworks": _published(
        network.VirtualNetwork, f"{NETWORK_OPERATIONS}:build_virtual_networks_create_or_update_request"
    ),
    "Microsoft.Network/privateEndpoints": _published(
        network.PrivateEndpoint, f"{NETWORK_OPERATIONS}:build_private_endpoints_create_or_update_request"
    ),
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": _published(
        network.PrivateDnsZoneGroup, f"{NETWORK_OPERATIONS}:build_private_dns_zone_groups_create_or_update_request"
    ),
    "Microsoft.Network/privateDnsZones": _published(privatedns.PrivateZone, "azure.mgmt.privatedns._configuration"),
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": _published(
        privatedns.VirtualNetworkLink, "azure.mgmt.privatedns._configuration"
    ),
    "Microsoft.ManagedIdentity/userAssignedIdentities": _published(msi.Identity),
    "Microsoft.Authorization/roleAssignments": _published(authorization.RoleAssignmentCreateParameters),
    "Microsoft.Authorization/roleDefinitions": _published(authorization.RoleDefinition),
}
# Kept for callers that only need the model of a type.
MODELS: dict[str, type] = {name: published.model for name, published in PUBLISHED.items()}

# Bicep's own keys on a resource body, not Resource Manager properties.
BICEP_KEYS = {"name", "parent", "scope", "dependsOn"}

_SUBPACKAGE_VERSION = re.compile(r"\.v(\d{4})_(\d{2})_(\d{2})((?:_[a-z]+)*)(?:\.|$)")
_VERSION_IN_SOURCE = re.compile(r"""["']api[-_]version["'],\s*["']([0-9]{4}-[0-9]{2}-[0-9]{2}(?:-[a-z]+)*)["']""")


@functools.cache
def published_version(version_source: str) -> str:
    """The one API version a module was generated for."""
    found = _SUBPACKAGE_VERSION.search(version_source)
    if found:
        year, month, day, suffix = found.groups()
        return f"{year}-{month}-{day}{suffix.replace('_', '-')}"
    module_name, _, function = version_source.partition(":")
    module = importlib.import_module(module_name)
    source = inspect.getsource(getattr(module, function)) if function else Path(str(module.__file__)).read_text()
    versions = set(_VERSION_IN_SOURCE.findall(source))
    if len(versions) != 1:
        raise AssertionError(f"{version_source} names API versions {sorted(versions)}, not one")
    return versions.pop()


# A type, described the same way for both generations of models:
# ("model", fields) with fields a callable giving rest name -> description, ("list", inner),
# ("dict", inner) or ("scalar", None).
Description = tuple[str, Any]
SCALAR: Description = ("scalar", None)


def _is_new_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and any(
        base.__module__.endswith("model_base") for base in annotation.__mro__[1:]
    )


def _is_msrest_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and isinstance(getattr(annotation, "_attribute_map", None), dict)


def describe(model: type) -> Description:
    if _is_new_model(model):
        return ("model", lambda: _new_fields(model))
    if _is_msrest_model(model):
        return ("model", lambda: _msrest_fields(model))
    raise TypeError(f"{model!r} is not a generated model")


@functools.cache
def _new_fields(model: type) -> dict[str, Description]:
    model()  # the generated base computes _attr_to_rest_field on first instantiation
    rest = {attr: field._rest_name for attr, field in model._attr_to_rest_field.items()}  # type: ignore[attr-defined]
    module = sys.modules[model.__module__]
    package = sys.modules[module.__name__.rsplit(".", 1)[0]]
    hints = typing.get_type_hints(model, globalns={**vars(module), "_models": package})
    return {name: _from_annotation(hints.get(attr)) for attr, name in rest.items()}


def _from_annotation(annotation: Any) -> Description:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in inner if _is_new_model(a)]
        return _from_annotation(models[0] if models else inner[0]) if inner else SCALAR
    if origin in (list, typing.List):  # noqa: UP006 - the generated code uses both
        return ("list", _from_annotation(typing.get_args(annotation)[0]))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return ("dict", _from_annotation(typing.get_args(annotation)[1]))
    if _is_new_model(annotation):
        return describe(annotation)
    return SCALAR


_FLATTENED = re.compile(r"(?<!\\)\.")


@functools.cache
def _msrest_fields(model: type) -> dict[str, Description]:
    """Nested rest names from an msrest `_attribute_map`, whose keys flatten `properties.x` into one."""
    module = sys.modules[model.__module__]
    tree: dict[str, Any] = {}
    entries = [entry for kind in _with_subtypes(model, module) for entry in vars_of(kind, "_attribute_map").values()]
    for entry in entries:
        path = [part.replace("\\.", ".") for part in _FLATTENED.split(entry["key"])]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _from_type_string(entry["type"], module)

    def nested(node: dict[str, Any]) -> dict[str, Description]:
        return {
            key: (("model", functools.partial(nested, value)) if isinstance(value, dict) else value)
            for key, value in node.items()
        }

    return nested(tree)


def vars_of(model: type, name: str) -> dict[str, Any]:
    """A class attribute of a generated model, inherited or not (msrest maps are plain dicts)."""
    value = getattr(model, name, None)
    return value if isinstance(value, dict) else {}


def _with_subtypes(model: type, module: types.ModuleType) -> list[type]:
    """A polymorphic model and every kind its discriminator names (criteria of a metric alert, ...):
    the Bicep's object may be any of them, so a property of any is accepted."""
    kinds = [model]
    # Only the model's own map: a subtype inherits its base's, which names the subtype itself.
    for names in vars(model).get("_subtype_map", {}).values():
        for name in names.values():
            subtype = getattr(module, name, None)
            if isinstance(subtype, type) and subtype is not model:
                kinds += _with_subtypes(subtype, module)
    return kinds


def _from_type_string(type_string: str, module: types.ModuleType) -> Description:
    if type_string.startswith("[") and type_string.endswith("]"):
        return ("list", _from_type_string(type_string[1:-1], module))
    if type_string.startswith("{") and type_string.endswith("}"):
        return ("dict", _from_type_string(type_string[1:-1], module))
    model = getattr(module, type_string, None)
    return describe(model) if isinstance(model, type) and _is_msrest_model(model) else SCALAR


def _objects(node: ts.Node) -> list[ts.Node]:
    """Object literals a value holds: itself, an array's elements, a for loop's body."""
    if node.type == "object":
        return [node]
    if node.type in ("array", "for_statement"):
        return [c for c in node.children if c.type == "object"]
    return []


def _check(node: ts.Node, description: Description, path: str, problems: list[str], owner: str) -> None:
    kind, inner = description
    if kind == "list":
        for element in _objects(node) if node.type != "object" else []:
            _check(element, inner, f"{path}[]", problems, owner)
        return
    if kind == "dict":
        for child in node.children if node.type == "object" else []:
            if child.type == "object_property":
                _check(child.children[-1], inner, f"{path}.{text(child.children[0])}", problems, owner)
        return
    if kind != "model":
        return
    fields = inner()
    for obj in _objects(node):
        for child in obj.children:
            if child.type != "object_property":
                continue
            key = text(child.children[0]).strip("'")
            if key not in fields:
                problems.append(f"{path}.{key}: no such property on {owner}")
                continue
            _check(child.children[-1], fields[key], f"{path}.{key}", problems, owner)


def version_problem(resource: Resource) -> str | None:
    """Why the resource cannot be checked at the API version it declares, or None."""
    published = PUBLISHED.get(resource.type)
    if published is None:
        return f"{resource.symbol}: no published definition for {resource.type}"
    version = published_version(published.version_source)
    if resource.api_version != version:
        return (
            f"{resource.symbol}: {resource.type}@{resource.api_version}, but the published definition "
            f"({published.model.__name__}) is for {version}"
        )
    return None


def unknown_properties(resource: Resource) -> list[str]:
    """Properties the resource's body sets that its published definition (at its version) lacks."""
    problem = version_problem(resource)
    if problem is not None:
        return [problem]
    if resource.body.type != "object":
        return []
    model = PUBLISHED[resource.type].model
    problems: list[str] = []
    owner = f"{model.__name__}@{resource.api_version}"
    fields = describe(model)[1]()
    for key, value in resource.properties.items():
        if key in BICEP_KEYS:
            continue
        if key not in fields:
            problems.append(f"{resource.symbol}.{key}: no such property on {owner}")
        else:
            _check(value, fields[key], f"{resource.symbol}.{key}", problems, owner)
    return problems
