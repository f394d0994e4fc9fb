// Service Bus: the Dataverse topic and its router subscription, the Finance queue, one session queue per flow.
//
// Choices (docs/deploy.md explains each):
// - lockDuration 5 minutes: a flow call can wait out Retry-After in-call; the host renews locks anyway.
// - maxDeliveryCount 10: only unexpected exceptions are redelivered (service errors are settled by
//   the flow itself as retry-later or parked), so ten tries separate a bug from a blip.
// - TTL 14 days: a paused flow keeps two weeks of backlog (dual-write keeps one day).
// - duplicate detection 10 minutes on flow queues and the topic: a redelivered plug-in message or a
//   router retry has the same MessageId and is dropped.

param namespaceName string
param location string
@allowed(['Standard', 'Premium'])
param sku string
param flows array

var ttl = 'P14D'
var lock = 'PT5M'

resource namespace 'Microsoft.ServiceBus/namespaces@2026-01-01' = {
  name: namespaceName
  location: location
  sku: {
    name: sku
    tier: sku
    capacity: sku == 'Premium' ? 1 : 0
  }
  properties: {
    minimumTlsVersion: '1.2'
    // Dataverse's service endpoint and Finance's business-event endpoint can only authenticate with
    // a SAS key, so local auth stays on for the namespace. The keys they get are send-only rules on
    // their own entity (below); the namespace's RootManageSharedAccessKey, which Azure creates, is
    // never read or handed out. The function app itself uses its managed identity.
    disableLocalAuth: false
    // Public even with private networking: Dataverse and Finance send from their own networks. The
    // app reaches a Premium namespace through its private endpoint (network.bicep).
    publicNetworkAccess: 'Enabled'
  }
}

resource dataverseTopic 'Microsoft.ServiceBus/namespaces/topics@2026-01-01' = {
  parent: namespace
  name: 'dataverse-changes'
  properties: {
    defaultMessageTimeToLive: ttl
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    maxSizeInMegabytes: 5120
  }
}

resource router 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2026-01-01' = {
  parent: dataverseTopic
  name: 'router'
  properties: {
    lockDuration: lock
    maxDeliveryCount: 10
    defaultMessageTimeToLive: ttl
    deadLetteringOnMessageExpiration: true
  }
}

resource dataverseSend 'Microsoft.ServiceBus/namespaces/topics/authorizationRules@2026-01-01' = {
  parent: dataverseTopic
  name: 'dataverse-send'
  properties: {
    rights: [
      'Send'
    ]
  }
}

resource financeEvents 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: 'finance-events'
  properties: {
    lockDuration: lock
    maxDeliveryCount: 10
    defaultMessageTimeToLive: ttl
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
  }
}

// Finance's business-event endpoint sends with a connection string kept in Finance's Key Vault.
resource financeSend 'Microsoft.ServiceBus/namespaces/queues/authorizationRules@2026-01-01' = {
  parent: financeEvents
  name: 'finance-send'
  properties: {
    rights: [
      'Send'
    ]
  }
}

// An admin initial sync longer than one slice (about two minutes) goes on from here, one message
// per slice: an HTTP call would be cut off after 230 s. No sessions and no duplicate detection: a
// redelivered slice resumes from the run's saved cursor.
resource adminRuns 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = {
  parent: namespace
  name: 'admin-runs'
  properties: {
    lockDuration: lock
    maxDeliveryCount: 10
    defaultMessageTimeToLive: ttl
    deadLetteringOnMessageExpiration: true
  }
}

resource flowQueues 'Microsoft.ServiceBus/namespaces/queues@2026-01-01' = [for flow in flows: {
  parent: namespace
  name: 'flow-${flow}'
  properties: {
    requiresSession: true
    lockDuration: lock
    maxDeliveryCount: 10
    defaultMessageTimeToLive: ttl
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
  }
}]

output namespaceName string = namespace.name
output namespaceId string = namespace.id
output namespaceHost string = '${namespace.name}.servicebus.windows.net'
output dataverseSendRuleId string = dataverseSend.id
