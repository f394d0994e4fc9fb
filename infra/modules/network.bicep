// Private networking (main.bicep privateNetworking=true, the production choice; docs/deploy.md
// "Private networking"): the app joins a virtual network, and Storage, Key Vault and (Premium)
// Service Bus get private endpoints with their private DNS zones.

param name string
param location string
param storageAccountName string
param keyVaultName string
param serviceBusNamespaceName string
@description('Private endpoints for Service Bus need the Premium tier.')
param serviceBusPrivate bool
param addressPrefix string = '10.40.0.0/24'

resource vnet 'Microsoft.Network/virtualNetworks@2026-03-01' = {
  name: 'vnet-${name}'
  location: location
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        // Flex Consumption integrates through a subnet delegated to Microsoft.App/environments.
        name: 'app'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 26, 0)
          delegations: [
            {
              name: 'flex'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: cidrSubnet(addressPrefix, 26, 1)
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2026-09-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' existing = {
  name: keyVaultName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusNamespaceName
}

// One endpoint per sub-resource the app uses: blob (deployment package, host), queue and table
// (host and state), the vault, and the namespace.
var storageEndpoints = [
  {
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
]
var otherEndpoints = concat(
  [
    {
      groupId: 'vault'
      zone: 'privatelink.vaultcore.azure.net'
      target: vault.id
    }
  ],
  serviceBusPrivate
    ? [
        {
          groupId: 'namespace'
          zone: 'privatelink.servicebus.windows.net'
          target: namespace.id
        }
      ]
    : []
)
var endpoints = concat(map(storageEndpoints, e => union(e, { target: storage.id })), otherEndpoints)

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for endpoint in endpoints: {
  name: endpoint.zone
  location: 'global'
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (endpoint, i) in endpoints: {
  parent: zones[i]
  name: 'vnet-${name}'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2026-03-01' = [for (endpoint, i) in endpoints: {
  name: 'pe-${name}-${endpoint.groupId}'
  location: location
  properties: {
    subnet: {
      id: vnet.properties.subnets[1].id
    }
    privateLinkServiceConnections: [
      {
        name: endpoint.groupId
        properties: {
          privateLinkServiceId: endpoint.target
          groupIds: [
            endpoint.groupId
          ]
        }
      }
    ]
  }
}]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2026-03-01' = [for (endpoint, i) in endpoints: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: endpoint.groupId
        properties: {
          privateDnsZoneId: zones[i].id
        }
      }
    ]
  }
}]

output appSubnetId string = vnet.properties.subnets[0].id
