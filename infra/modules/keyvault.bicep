// Key Vault (RBAC, no access policies): the webhook key, and the app registration's credential in
// secret mode. The client secret is set by a person with `az keyvault secret set`;
// the webhook key is generated here so no mode leaves the webhook with an empty key.

param vaultName string
param location string
@secure()
@description('Value of the x-projops-webhook-key header (main.bicep generates one).')
param webhookSecret string
@description('false with private networking: only the private endpoint reaches the secrets.')
param publicNetworkAccess bool = true

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' = {
  name: vaultName
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
  }
}

// Written through the management plane (vaults/secrets/write), so the deployer needs no data-plane role.
resource webhookKey 'Microsoft.KeyVault/vaults/secrets@2026-05-15' = {
  parent: vault
  name: 'projops-webhook-secret'
  properties: {
    value: webhookSecret
    contentType: 'text/plain'
  }
}

output vaultName string = vault.name
