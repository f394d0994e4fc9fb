// Key Vault for the app registration's credential and the webhook key (RBAC, no access policies).
// Secrets are set by a person with `az keyvault secret set`, never by this template.

param vaultName string
param location string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
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
  }
}

output vaultName string = vault.name
