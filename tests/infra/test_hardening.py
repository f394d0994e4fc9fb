"""Issue #16: the function app's hardening, its identity's roles and their order, Service Bus keys,
the webhook key in every mode. Each check is also shown failing on a snippet that breaks it."""

from __future__ import annotations

import re

import pytest

from shared.settings import Settings
from tests.infra.bicep import (
    INFRA,
    broad_role_problems,
    call_arguments,
    declaration,
    literal,
    lookup,
    modules,
    object_properties,
    parse,
    resources,
    sas_problems,
    site_hardening_problems,
    text,
)

BICEP = sorted(INFRA.rglob("*.bicep"))
MAIN = parse((INFRA / "main.bicep").read_bytes())
FUNCTION_APP = parse((INFRA / "modules" / "functionapp.bicep").read_bytes())

HARDENED_SITE = b"""
resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func'
  properties: {
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
  }
}
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}
resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}
"""


def test_the_function_app_is_hardened() -> None:
    assert [r.symbol for r in resources(FUNCTION_APP) if r.type == "Microsoft.Web/sites"] == ["app"]
    assert site_hardening_problems(FUNCTION_APP) == []


def test_the_hardening_check_accepts_a_hardened_site() -> None:
    assert site_hardening_problems(parse(HARDENED_SITE)) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"ftpsState: 'Disabled'", b"ftpsState: 'FtpsOnly'", "ftpsState"),
        (b"scmMinTlsVersion: '1.2'", b"scmMinTlsVersion: '1.0'", "scmMinTlsVersion"),
        (b"      minTlsVersion: '1.2'\n", b"", "siteConfig.minTlsVersion"),
        (b"httpsOnly: true", b"httpsOnly: false", "httpsOnly"),
        (b"name: 'scm'\n  properties: {\n    allow: false", b"name: 'scm'\n  properties: {\n    allow: true", "scm"),
        (b"name: 'ftp'", b"name: 'ftp2'", "ftp"),
    ],
)
def test_the_hardening_check_finds_each_weakening(old: bytes, new: bytes, problem: str) -> None:
    assert old in HARDENED_SITE
    problems = site_hardening_problems(parse(HARDENED_SITE.replace(old, new, 1)))
    assert any(problem in p for p in problems), problems


def test_no_broad_role_and_the_custom_roles_are_narrow() -> None:
    for path in BICEP:
        assert broad_role_problems(parse(path.read_bytes())) == [], path
    roles = parse((INFRA / "modules" / "roles.bicep").read_bytes())
    assert [r.symbol for r in resources(roles) if r.type == "Microsoft.Authorization/roleDefinitions"] == [
        "settingsSwitch",
        "queueCounts",
    ]


@pytest.mark.parametrize(
    "snippet",
    [
        b"var roles = {\n  websiteContributor: 'de139f84-1756-47ae-9be6-808fbbe84772'\n}\n",
        b"resource d 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {\n  name: 'x'\n  properties: {\n"
        b"    permissions: [\n      {\n        actions: [\n          'Microsoft.Web/sites/*'\n        ]\n      }\n"
        b"    ]\n  }\n}\n",
        b"resource d 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {\n  name: 'x'\n  properties: {\n"
        b"    permissions: [\n      {\n        actions: [\n          'Microsoft.Web/sites/publishxml/action'\n"
        b"        ]\n      }\n    ]\n  }\n}\n",
        b"resource d 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {\n  name: 'x'\n  properties: {\n"
        b"    permissions: [\n      {\n        actions: [\n          'Microsoft.ServiceBus/namespaces/queues/write'\n"
        b"        ]\n      }\n    ]\n  }\n}\n",
    ],
    ids=["website-contributor", "wildcard", "publishing-profile", "queue-write"],
)
def test_the_role_check_rejects_broad_rights(snippet: bytes) -> None:
    assert broad_role_problems(parse(snippet))


def test_service_bus_keys_are_send_only_rules_on_entities() -> None:
    servicebus = parse((INFRA / "modules" / "servicebus.bicep").read_bytes())
    rules = [r.symbol for r in resources(servicebus) if r.type.endswith("/authorizationRules")]
    assert sorted(rules) == ["dataverseSend", "financeSend"]
    for path in BICEP:
        assert sas_problems(parse(path.read_bytes())) == [], path
    deploy = (INFRA.parent / "docs" / "deploy.md").read_text()
    assert doc_key_problems(deploy) == []
    assert "authorization-rule keys renew" in deploy  # rotation is documented


def doc_key_problems(markdown: str) -> list[str]:
    """Commands in the guide that read or renew a Service Bus key other than the two send-only rules."""
    commands = " ".join(markdown.split("```")[1::2]).replace("\\\n", " ")
    problems = [c for c in re.findall(r"az servicebus [^\n]*", commands) if "RootManageSharedAccessKey" in c]
    for command in re.findall(r"az servicebus (?:namespace |topic |queue )?authorization-rule keys [^\n]*", commands):
        if not re.search(r" -n (dataverse-send|finance-send)\b", command):
            problems.append(command)
    return problems


def test_the_doc_key_check_rejects_the_root_key() -> None:
    command = "az servicebus namespace authorization-rule keys list -g rg --namespace-name ns"
    assert doc_key_problems(f"```sh\n{command} -n RootManageSharedAccessKey\n```")
    assert doc_key_problems(f"```sh\n{command} \\\n  -n RootManageSharedAccessKey\n```")


@pytest.mark.parametrize(
    "snippet",
    [
        b"resource r 'Microsoft.ServiceBus/namespaces/authorizationRules@2022-10-01-preview' = {\n"
        b"  name: 'all'\n  properties: {\n    rights: [\n      'Send'\n    ]\n  }\n}\n",
        b"resource r 'Microsoft.ServiceBus/namespaces/topics/authorizationRules@2022-10-01-preview' = {\n"
        b"  name: 'x'\n  properties: {\n    rights: [\n      'Send'\n      'Listen'\n    ]\n  }\n}\n",
        b"var c = listKeys(resourceId('Microsoft.ServiceBus/namespaces/authorizationRules', 'ns',"
        b" 'RootManageSharedAccessKey'), '2022-10-01-preview').primaryConnectionString\n",
    ],
    ids=["namespace-rule", "listen-right", "root-key"],
)
def test_the_sas_check_rejects_wide_keys(snippet: bytes) -> None:
    assert sas_problems(parse(snippet))


def app_problems(main: bytes, function_app: bytes) -> list[str]:
    """The app's identity exists and holds its roles before the app: a user-assigned identity from
    its own module, the roles module given that identity, and the app module waiting for the roles."""
    by_path = {m.path: m for m in modules(parse(main))}
    identity, roles, app = (by_path.get(f"modules/{n}.bicep") for n in ("identity", "roles", "functionapp"))
    if identity is None or roles is None or app is None:
        return ["identity, roles or functionapp module missing"]
    problems = []
    principal = text(lookup(roles.properties["params"], "principalId") or roles.body)
    if not principal.startswith(f"{identity.symbol}.outputs."):
        problems.append(f"roles are given {principal}, not the identity module's principal")
    depends = app.properties.get("dependsOn")
    if depends is None or roles.symbol not in [text(c) for c in depends.children]:
        problems.append("the app module does not wait for the roles module")
    site = next(r for r in resources(parse(function_app)) if r.type == "Microsoft.Web/sites")
    if literal(lookup(site.body, "identity", "type")) != "UserAssigned":
        problems.append("the app's identity is not user-assigned")
    return problems


def test_the_identity_and_its_roles_come_before_the_app() -> None:
    main = (INFRA / "main.bicep").read_bytes()
    function_app = (INFRA / "modules" / "functionapp.bicep").read_bytes()
    assert app_problems(main, function_app) == []
    # and each way of getting the order wrong is caught
    assert app_problems(
        main.replace(b"principalId: identity.outputs.principalId", b"principalId: app.outputs.x"), function_app
    )
    assert app_problems(main.replace(b"  dependsOn: [\n    access\n  ]\n", b""), function_app)
    assert app_problems(main, function_app.replace(b"type: 'UserAssigned'", b"type: 'SystemAssigned'"))


def test_integration_ids_are_optional_parameters() -> None:
    for name in ("integrationUserIds", "integrationObjectIds"):
        assert literal(declaration(MAIN, "parameter", name)) == ""
    with pytest.raises(KeyError):
        declaration(parse(b"param integrationUserIds string\n"), "parameter", "integrationUserIds")


def webhook_problems(main: bytes, keyvault: bytes) -> list[str]:
    tree = parse(main)
    problems = []
    default = declaration(tree, "parameter", "generatedWebhookSecret")
    if "newGuid()" not in text(default):
        problems.append("generatedWebhookSecret has no generated default")
    if "webhookKey" not in text(tree.root_node).split("module vault", 1)[-1].split("\n}", 1)[0]:
        problems.append("the vault is not given the generated key when none is passed")
    vault = parse(keyvault)
    secrets = [r for r in resources(vault) if r.type == "Microsoft.KeyVault/vaults/secrets"]
    if [literal(s.properties.get("name")) for s in secrets] != ["projops-webhook-secret"]:
        problems.append("the vault holds no projops-webhook-secret")
    elif text(lookup(secrets[0].body, "properties", "value") or secrets[0].body) != "webhookSecret":
        problems.append("the secret's value is not the webhookSecret parameter")
    setting = next(
        (m for m in text(tree.root_node).splitlines() if m.strip().startswith("PROJOPS_WEBHOOK_SECRET:")), ""
    )
    value = setting.split(":", 1)[-1].strip()
    if not (value.startswith("'@Microsoft.KeyVault(") and "SecretName=projops-webhook-secret" in value):
        problems.append(f"PROJOPS_WEBHOOK_SECRET is {value!r}, not a Key Vault reference in every mode")
    vault_module = next(m for m in modules(tree) if m.path == "modules/keyvault.bicep")
    if vault_module.body.parent is not None and vault_module.body.parent.type == "if_statement":
        problems.append("the vault is conditional, so some mode has no webhook key")
    return problems


def test_the_webhook_key_is_generated_in_key_vault_in_every_mode() -> None:
    main = (INFRA / "main.bicep").read_bytes()
    keyvault = (INFRA / "modules" / "keyvault.bicep").read_bytes()
    assert webhook_problems(main, keyvault) == []
    reference = b"'@Microsoft.KeyVault(VaultName=${vault.outputs.vaultName};SecretName=projops-webhook-secret)'"
    assert webhook_problems(main.replace(reference, b"useKeyVault ? " + reference + b" : ''", 1), keyvault)
    assert webhook_problems(main.replace(b"= newGuid()", b"= ''"), keyvault)
    assert webhook_problems(main.replace(b"webhookSecret: webhookKey", b"webhookSecret: webhookSecret"), keyvault)
    assert webhook_problems(main, keyvault.replace(b"value: webhookSecret", b"value: ''"))
    assert webhook_problems(
        main.replace(
            b"module vault 'modules/keyvault.bicep' = {", b"module vault 'modules/keyvault.bicep' = if (useKeyVault) {"
        ),
        keyvault,
    )


def test_call_arguments_reads_a_union() -> None:
    tree = parse(b"var s = union(a, b, { x: 1 })\n")
    assert call_arguments(declaration(tree, "variable", "s"), "union") == ["a", "b", "{ x: 1 }"]


def public_access_problems(bicep: bytes, resource_type: str) -> list[str]:
    """The resource's public access must follow a parameter (off with private networking), not be fixed."""
    found = [r for r in resources(parse(bicep)) if r.type == resource_type]
    if not found:
        return [f"no {resource_type}"]
    problems = []
    for resource in found:
        value = lookup(resource.body, "properties", "publicNetworkAccess")
        if value is None or value.type != "ternary_expression":
            problems.append(f"{resource.symbol}: publicNetworkAccess is fixed")
    return problems


def test_private_networking_is_a_parameter_off_by_default() -> None:
    assert literal(declaration(MAIN, "parameter", "privateNetworking")) == "false"
    network = next(m for m in modules(MAIN) if m.path == "modules/network.bicep")
    assert network.body.parent is not None and network.body.parent.type == "if_statement"
    assert text(network.body.parent.children[1]) == "(privateNetworking)"
    for module, resource_type in [
        ("storage", "Microsoft.Storage/storageAccounts"),
        ("keyvault", "Microsoft.KeyVault/vaults"),
    ]:
        assert public_access_problems((INFRA / "modules" / f"{module}.bicep").read_bytes(), resource_type) == []
        declared = next(m for m in modules(MAIN) if m.path == f"modules/{module}.bicep")
        assert (
            text(lookup(declared.properties["params"], "publicNetworkAccess") or declared.body) == "!privateNetworking"
        )
    source = (INFRA / "modules" / "network.bicep").read_text()
    for group in ("blob", "queue", "table", "vault", "namespace"):
        assert f"groupId: '{group}'" in source
    assert "serviceName: 'Microsoft.App/environments'" in source  # Flex Consumption's delegation
    site = next(r for r in resources(FUNCTION_APP) if r.type == "Microsoft.Web/sites")
    assert "subnetId" in text(lookup(site.body, "properties", "virtualNetworkSubnetId") or site.body)


def test_the_public_access_check_rejects_a_fixed_value() -> None:
    storage = (INFRA / "modules" / "storage.bicep").read_bytes()
    fixed = storage.replace(
        b"publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'", b"publicNetworkAccess: 'Enabled'"
    )
    assert fixed != storage
    assert public_access_problems(fixed, "Microsoft.Storage/storageAccounts")
    assert public_access_problems(
        storage.replace(b"    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'\n", b""),
        "Microsoft.Storage/storageAccounts",
    )


IDENTITY_SETTINGS = {
    "AzureWebJobsStorage__clientId": "identityClientId",
    "ServiceBus__clientId": "identityClientId",
    "AZURE_CLIENT_ID": "identityClientId",
    "PROJOPS_MANAGED_IDENTITY_CLIENT_ID": "identityClientId",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "'ClientId=${identityClientId};Authorization=AAD'",
}


def identity_setting_problems(function_app: bytes) -> list[str]:
    """With only a user-assigned identity, every client (host storage, Service Bus trigger, SDK
    credentials, the telemetry exporter) must be told its client id, or it asks for a token as a
    system-assigned identity the app does not have."""
    platform = declaration(parse(function_app), "variable", "platformSettings")
    values = {key: text(value) for key, value in object_properties(platform).items()}
    return [f"{key} is {values.get(key)!r}" for key, wanted in IDENTITY_SETTINGS.items() if values.get(key) != wanted]


def test_every_client_is_given_the_identity_client_id() -> None:
    source = (INFRA / "modules" / "functionapp.bicep").read_bytes()
    assert identity_setting_problems(source) == []
    assert identity_setting_problems(source.replace(b"  AZURE_CLIENT_ID: identityClientId\n", b""))
    assert identity_setting_problems(
        source.replace(b"'ClientId=${identityClientId};Authorization=AAD'", b"'Authorization=AAD'")
    )


def test_the_host_refuses_a_body_larger_than_the_app_takes_before_reading_it() -> None:
    """The host reads a whole request before the worker checks the webhook's key and size: its own
    limit (100 MB by default) is what an anonymous caller could send each instance."""
    platform = declaration(
        parse((INFRA / "modules" / "functionapp.bicep").read_bytes()), "variable", "platformSettings"
    )
    limit = int(text(object_properties(platform)["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"]).strip("'"))
    webhook = Settings.model_fields["webhook_max_bytes"].default
    assert webhook <= limit <= 8 * 1024 * 1024
