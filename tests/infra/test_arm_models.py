"""Every property the Bicep sets exists on its resource type's published definition (arm_models)."""

from __future__ import annotations

import pytest

from tests.infra.arm_models import MODELS, unknown_properties
from tests.infra.bicep import INFRA, parse, resources

BICEP = sorted(INFRA.rglob("*.bicep"))


def test_every_property_the_bicep_sets_is_published_for_its_type() -> None:
    checked = 0
    for path in BICEP:
        for resource in resources(parse(path.read_bytes())):
            assert unknown_properties(resource) == [], path.name
            checked += resource.type in MODELS
    assert checked >= 15


def test_the_model_check_finds_a_misspelt_and_a_misplaced_property() -> None:
    misspelt = b"""
resource app 'Microsoft.Web/sites@2024-04-01' = {
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
resource q 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
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
        "app.properties.siteConfig.ftpState: no such property on SiteConfig",
        "app.properties.siteConfig.appSettings[].valu: no such property on NameValuePair",
        "q.properties.minimumTlsVersion: no such property on SBQueueProperties",
    ]


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("functionapp", "userAssignedIdentityResourceId", "userAssignedIdentityId"),
        ("functionapp", "instanceMemoryMB:", "instanceMemoryMb:"),
        ("storage", "allowSharedKeyAccess", "allowSharedKeyAcess"),
        ("keyvault", "enablePurgeProtection", "purgeProtection"),
        ("servicebus", "duplicateDetectionHistoryTimeWindow", "duplicateWindow"),
    ],
)
def test_the_model_check_finds_a_typo_in_each_module(module: str, old: str, new: str) -> None:
    source = (INFRA / "modules" / f"{module}.bicep").read_text()
    assert old in source
    broken = parse(source.replace(old, new).encode())
    assert any(new.rstrip(":") in p for r in resources(broken) for p in unknown_properties(r))
