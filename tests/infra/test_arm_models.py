"""Every resource the Bicep declares is checked at its API version against the published definition, and
every property it sets exists there (arm_models)."""

from __future__ import annotations

import pytest

from tests.infra.arm_models import PUBLISHED, published_version, unknown_properties, version_problem
from tests.infra.bicep import INFRA, parse, resources

BICEP = sorted(INFRA.rglob("*.bicep"))


def test_every_property_the_bicep_sets_is_published_for_its_type_and_version() -> None:
    declared = [(path, r) for path in BICEP for r in resources(parse(path.read_bytes()))]
    for path, resource in declared:
        assert version_problem(resource) is None, path.name
        assert unknown_properties(resource) == [], path.name
    # every type the Bicep declares has a definition, and every definition is used
    assert {r.type for _, r in declared} == set(PUBLISHED)
    assert len(declared) >= 60


def test_the_published_versions_are_read_from_the_packages() -> None:
    assert published_version(PUBLISHED["Microsoft.Authorization/roleAssignments"].version_source) == "2022-04-01"
    assert published_version("azure.mgmt.applicationinsights.v2018_05_01_preview.models") == "2018-05-01-preview"
    assert published_version(PUBLISHED["Microsoft.Insights/metricAlerts"].version_source) == "2018-03-01"
    with pytest.raises(AssertionError, match="not one"):
        published_version("azure.mgmt.network.operations._operations")  # mixes versions


@pytest.mark.parametrize(
    ("module", "declared", "older"),
    [
        ("identity", "userAssignedIdentities@2024-11-30", "userAssignedIdentities@2023-01-31"),
        ("alerts", "scheduledQueryRules@2023-12-01", "scheduledQueryRules@2023-03-15-preview"),
        ("network", "virtualNetworks@2026-03-01", "virtualNetworks@2024-01-01"),
        ("servicebus", "namespaces@2026-01-01", "namespaces@2022-10-01-preview"),
        ("roles", "roleDefinitions@2022-04-01", "roleDefinitions@2022-05-01-preview"),
    ],
)
def test_a_resource_at_another_api_version_is_reported(module: str, declared: str, older: str) -> None:
    source = (INFRA / "modules" / f"{module}.bicep").read_text()
    assert declared in source
    broken = resources(parse(source.replace(declared, older, 1).encode()))
    problems = [p for p in (version_problem(r) for r in broken) if p]
    assert len(problems) == 1 and older in problems[0], problems


def test_the_model_check_finds_a_misspelt_and_a_misplaced_property() -> None:
    misspelt = b"""
resource app 'Microsoft.Web/sites@2025-05-01' = {
  name: 'func'
  properties: {
    httpsOnly: true
    siteConfig: {
      ftpState: 'Disabled'
      appSettings: [
        {
          name: 'a'
          valu: 'b'
        }
      ]
    }
  }
}
resource q 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  name: 'q'
  properties: {
    requiresSession: true
    status: 'ReceiveDisabled'
    minimumTlsVersion: '1.2'
  }
}
"""
    problems = [p for r in resources(parse(misspelt)) for p in unknown_properties(r)]
    assert problems == [
        "app.properties.siteConfig.ftpState: no such property on Site@2025-05-01",
        "app.properties.siteConfig.appSettings[].valu: no such property on Site@2025-05-01",
        "q.properties.minimumTlsVersion: no such property on SBQueue@2026-01-01",
    ]


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("functionapp", "userAssignedIdentityResourceId", "userAssignedIdentityId"),
        ("functionapp", "instanceMemoryMB:", "instanceMemoryMb:"),
        ("storage", "allowSharedKeyAccess", "allowSharedKeyAcess"),
        ("keyvault", "enablePurgeProtection", "purgeProtection"),
        ("servicebus", "duplicateDetectionHistoryTimeWindow", "duplicateWindow"),
        # older-generation (msrest) models, flattened properties and polymorphic criteria among them
        ("monitoring", "DisableLocalAuth", "DisableLocalAuthentication"),
        ("monitoring", "retentionInDays", "retentionDays"),
        ("monitoring", "serializedData", "serializedJson"),
        ("alerts", "minFailingPeriodsToAlert", "minFailingPeriods"),
        ("alerts", "criterionType", "criterion"),
        ("network", "privateLinkServiceId", "privateLinkServiceRef"),
        ("network", "registrationEnabled", "autoRegistration"),
        ("roles", "notActions", "deniedActions"),
        ("roles", "assignableScopes", "assignedScopes"),
        ("functionapp", "principalType", "principalKind"),
    ],
)
def test_the_model_check_finds_a_typo_in_each_module(module: str, old: str, new: str) -> None:
    source = (INFRA / "modules" / f"{module}.bicep").read_text()
    assert old in source
    broken = parse(source.replace(old, new).encode())
    assert any(new.rstrip(":") in p for r in resources(broken) for p in unknown_properties(r))
