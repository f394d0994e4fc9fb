// Role assignments for the app's user-assigned identity, each at the narrowest scope that works.
// They are made before the function app exists (main.bicep), so its first start has them.

param principalId string
param storageAccountName string
param serviceBusNamespaceName string
param flows array
param appInsightsName string
param keyVaultName string

var roles = {
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2026-09-01' existing = {
  name: storageAccountName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' existing = {
  name: serviceBusNamespaceName
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2026-01-01' existing = {
  parent: namespace
  name: 'dataverse-changes'
}

resource router 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2026-01-01' existing = {
  parent: topic
  name: 'router'
}

resource financeEvents 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' existing = {
  parent: namespace
  name: 'finance-events'
}

resource adminRuns 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' existing = {
  parent: namespace
  name: 'admin-runs'
}

resource flowQueues 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' existing = [for flow in flows: {
  parent: namespace
  name: 'flow-${flow}'
}]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Topic triggers need the receiver role on the subscription itself.
resource receiveRouter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(router.id, principalId, roles.serviceBusDataReceiver)
  scope: router
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

resource receiveFinance 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(financeEvents.id, principalId, roles.serviceBusDataReceiver)
  scope: financeEvents
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

// Flow queues: receive (the flow), send (routers, scheduled retries, replay, initial sync).
resource receiveFlows 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (flow, i) in flows: {
  name: guid(flowQueues[i].id, principalId, roles.serviceBusDataReceiver)
  scope: flowQueues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}]

resource sendFlows 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (flow, i) in flows: {
  name: guid(flowQueues[i].id, principalId, roles.serviceBusDataSender)
  scope: flowQueues[i]
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}]

// The webhook router forwards to the topic; replay resends raw messages to both ingresses.
resource sendTopic 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, roles.serviceBusDataSender)
  scope: topic
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource sendFinance 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(financeEvents.id, principalId, roles.serviceBusDataSender)
  scope: financeEvents
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

// A slice of an admin initial sync sends the next one and receives it.
resource receiveAdminRuns 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(adminRuns.id, principalId, roles.serviceBusDataReceiver)
  scope: adminRuns
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
  }
}

resource sendAdminRuns 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(adminRuns.id, principalId, roles.serviceBusDataSender)
  scope: adminRuns
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource vault 'Microsoft.KeyVault/vaults@2026-05-15' existing = {
  name: keyVaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// pause/resume flips AzureWebJobs.<function>.Disabled: reading and writing the app's settings is all it
// needs. Website Contributor would also let the app publish its own code, read its publishing
// credentials and delete itself. Assigned on the app alone (functionapp.bicep).
resource settingsSwitch 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'projops-sync settings switch')
  properties: {
    // Role names are unique in the tenant: one per resource group.
    roleName: 'projops-sync settings switch ${uniqueString(resourceGroup().id)}'
    description: 'Read and write a function app\'s app settings (projops-sync pause/resume).'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Web/sites/read'
          'Microsoft.Web/sites/config/read'
          'Microsoft.Web/sites/config/list/action'
          'Microsoft.Web/sites/config/write'
        ]
        notActions: []
      }
    ]
  }
}

// status reads each queue's message counts from Resource Manager: the data-plane runtime properties
// would need the Manage right (which can also delete entities and change rules).
resource queueCounts 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'projops-sync queue counts')
  properties: {
    roleName: 'projops-sync queue counts ${uniqueString(resourceGroup().id)}'
    description: 'Read Service Bus queue resources and their message counts (projops-sync status).'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.ServiceBus/namespaces/queues/read'
        ]
        notActions: []
      }
    ]
  }
}

resource readQueueCounts 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, queueCounts.id)
  scope: namespace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: queueCounts.id
  }
}

output settingsSwitchRoleId string = settingsSwitch.id
