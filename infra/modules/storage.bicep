// Storage: the Flex Consumption deployment container and the state tables. Identity only.

param accountName string
param location string
@description('false with private networking: only the private endpoints reach the account.')
param publicNetworkAccess bool = true

resource account 'Microsoft.Storage/storageAccounts@2026-09-01' = {
  name: accountName
  location: location
  sku: {
    name: 'Standard_ZRS'
  }
  kind: 'StorageV2'
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess ? 'Enabled' : 'Disabled'
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2026-09-01' = {
  parent: account
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-09-01' = {
  parent: blobs
  name: 'deployments'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2026-09-01' = {
  parent: account
  name: 'default'
}

resource syncstate 'Microsoft.Storage/storageAccounts/tableServices/tables@2026-09-01' = {
  parent: tableService
  name: 'syncstate'
}

resource parked 'Microsoft.Storage/storageAccounts/tableServices/tables@2026-09-01' = {
  parent: tableService
  name: 'parked'
}

resource syncruns 'Microsoft.Storage/storageAccounts/tableServices/tables@2026-09-01' = {
  parent: tableService
  name: 'syncruns'
}

output accountName string = account.name
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}deployments'
output tableEndpoint string = account.properties.primaryEndpoints.table
