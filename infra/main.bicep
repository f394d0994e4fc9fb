// projops-sync: everything one environment needs, in one resource group.
// Deploy: docs/deploy.md (infra/hooks/current_settings.py, then az deployment group create), or azd up.

targetScope = 'resourceGroup'

@description('Short name used in every resource name (letters and digits).')
@minLength(3)
@maxLength(12)
param name string

param location string = resourceGroup().location

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string

@description('Finance environment URL, e.g. https://contoso.operations.dynamics.com')
param financeUrl string

@description('Legal entities in scope (dataAreaId), comma-separated.')
param companies string

// Not certificate: the app then needs PROJOPS_CLIENT_CERTIFICATE_PATH and _THUMBPRINT, which this
// template does not set (docs/deploy.md); deployed without them, the app would not start.
@description('secret: the app registration\'s client secret comes from Key Vault; managed-identity: the app\'s own identity.')
@allowed(['secret', 'managed-identity'])
param authMode string = 'managed-identity'

@description('Entra tenant id (secret mode).')
param tenantId string = tenant().tenantId

@description('Application (client) id of the app registration (secret mode).')
param clientId string = ''

// In managed-identity mode these exist only after the first deployment (the application users are
// made for the identity this template creates): docs/deploy.md, step 4, deploys again with them.
// Left empty, a redeploy keeps what the app has (existingAppSettings).
@description('Dataverse systemuserid(s) of the integration\'s application user, comma-separated (echo detection). Empty on the first deployment.')
param integrationUserIds string = ''

@description('Entra object id(s) the integration writes to Finance as, comma-separated (echo detection). Empty on the first deployment.')
param integrationObjectIds string = ''

// infra/hooks/current_settings.py fills the next two before every deployment, for az and azd alike
// (docs/deploy.md): a deployment replaces every app setting and would rotate the webhook key.
@secure()
@description('The function app\'s current app settings as base64 of their JSON object (infra/hooks/current_settings.py); empty on a first deployment. The template\'s own settings override them, the rest (pause, cutover) is kept.')
param existingAppSettings string = ''

@secure()
@description('The current webhook key (projops-webhook-secret in Key Vault) in base64; empty on a first deployment, which generates one.')
param webhookSecret string = ''

@secure()
@description('Not to be set: the webhook key a first deployment stores when webhookSecret is empty.')
param generatedWebhookSecret string = newGuid()

@description('Flows, one session-enabled queue flow-<flow> each. Keep in step with functions/catalog.py.')
param flows array = [
  'legal-entities'
  'ledgers'
  'exchange-rates'
  'customers'
  'accounts-to-customers'
  'vendors'
  'vendor-accounts'
  'workers'
  'worker-resources'
  'resource-roles'
  'transaction-categories'
  'contract-headers'
  'funding-sources'
  'contract-lines'
  'projects-v2'
  'project-tasks'
  'contract-milestones'
  'hour-estimates'
  'expense-estimates'
  'material-estimates'
  'actuals'
  'actuals-accounting'
  'transaction-connections'
  'invoice-proposals'
  'expense-categories'
  'expenses'
  'vendor-invoices'
  'vendor-invoice-lines'
  'vendor-invoice-status'
]

@allowed(['Standard', 'Premium'])
param serviceBusSku string = 'Standard'

@description('Flex Consumption instance memory in MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

param maximumInstanceCount int = 40

@description('Resource id of the action group alerts notify; empty for none.')
param actionGroupId string = ''

@description('Alert when the oldest message of a flow queue is older than this many seconds.')
param backlogAgeThresholdSeconds int = 900

@description('Attempts before an event is parked (PROJOPS_RETRY_MAX_ATTEMPTS).')
@minValue(1)
@maxValue(100)
param retryMaxAttempts int = 8

@description('NCRONTAB schedule of the reconcile timer (UTC). It reconciles only the flows in reconcileFlows.')
param reconcileSchedule string = '0 0 2 * * *'

@description('Comma-separated flows the timer reconciles; empty (the default): scheduled reconcile is off.')
param reconcileFlows string = ''

@description('Production choice: VNet integration, private endpoints for Storage, Key Vault and (Premium) Service Bus, public access off for Storage and Key Vault. Default off (public endpoints, identity-only auth).')
param privateNetworking bool = false

var useKeyVault = authMode != 'managed-identity'
var currentAppSettings = empty(existingAppSettings) ? {} : json(base64ToString(existingAppSettings))
// Both arrive base64-encoded. A placeholder azd did not fill (`${...}`, infra/main.parameters.json) is not
// base64, so the vault and app modules fail before writing anything, instead of storing the literal.
var webhookKey = empty(webhookSecret) ? generatedWebhookSecret : base64ToString(webhookSecret)
// Set only when given, so a redeploy without them keeps the values the app already has.
var integrationUserSetting = empty(integrationUserIds) ? {} : {
  PROJOPS_INTEGRATION_USER_IDS: integrationUserIds
}
var integrationObjectSetting = empty(integrationObjectIds) ? {} : {
  PROJOPS_INTEGRATION_OBJECT_IDS: integrationObjectIds
}
var integrationIds = union(integrationUserSetting, integrationObjectSetting)
var suffix = uniqueString(resourceGroup().id, name)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: name
    location: location
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: name
    location: location
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    accountName: toLower('st${name}${take(suffix, 8)}')
    location: location
    publicNetworkAccess: !privateNetworking
  }
}

module messaging 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    namespaceName: 'sb-${name}-${take(suffix, 6)}'
    location: location
    sku: serviceBusSku
    flows: flows
  }
}

// Every mode has a vault: the webhook key lives there even when no client credential does.
module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    vaultName: 'kv-${name}-${take(suffix, 6)}'
    location: location
    webhookSecret: webhookKey
    publicNetworkAccess: !privateNetworking
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    name: name
    location: location
    storageAccountName: storage.outputs.accountName
    keyVaultName: vault.outputs.vaultName
    serviceBusNamespaceName: messaging.outputs.namespaceName
    serviceBusPrivate: serviceBusSku == 'Premium'
  }
}

// The identity's roles first; the app (below) waits for them.
module access 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.accountName
    serviceBusNamespaceName: messaging.outputs.namespaceName
    flows: flows
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: vault.outputs.vaultName
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  // Created once its identity can reach Storage, Service Bus and Key Vault.
  dependsOn: [
    access
  ]
  params: {
    name: name
    location: location
    storageAccountName: storage.outputs.accountName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    tableEndpoint: storage.outputs.tableEndpoint
    serviceBusNamespaceHost: messaging.outputs.namespaceHost
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    settingsSwitchRoleId: access.outputs.settingsSwitchRoleId
    existingAppSettings: currentAppSettings
    subnetId: privateNetworking ? network.outputs.appSubnetId : ''
    settings: union(integrationIds, {
      PROJOPS_DATAVERSE_URL: dataverseUrl
      PROJOPS_FINANCE_URL: financeUrl
      PROJOPS_AUTH_MODE: authMode
      PROJOPS_TENANT_ID: tenantId
      PROJOPS_CLIENT_ID: clientId
      PROJOPS_COMPANIES: companies
      PROJOPS_RETRY_MAX_ATTEMPTS: string(retryMaxAttempts)
      PROJOPS_RECONCILE_SCHEDULE: reconcileSchedule
      PROJOPS_RECONCILE_FLOWS: reconcileFlows
      PROJOPS_STATE_BACKEND: 'tables'
      PROJOPS_BUS_BACKEND: 'servicebus'
      PROJOPS_SERVICEBUS_RESOURCE_ID: messaging.outputs.namespaceId
      // Key Vault references: the values never appear in app settings or in this template.
      PROJOPS_CLIENT_SECRET: useKeyVault ? '@Microsoft.KeyVault(VaultName=${vault.outputs.vaultName};SecretName=projops-client-secret)' : ''
      PROJOPS_WEBHOOK_SECRET: '@Microsoft.KeyVault(VaultName=${vault.outputs.vaultName};SecretName=projops-webhook-secret)'
    })
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    name: name
    location: location
    appInsightsId: monitoring.outputs.appInsightsId
    serviceBusNamespaceId: messaging.outputs.namespaceId
    actionGroupId: actionGroupId
    backlogAgeThresholdSeconds: backlogAgeThresholdSeconds
  }
}

output functionAppName string = app.outputs.appName
output functionAppResourceId string = app.outputs.appId
output serviceBusNamespace string = messaging.outputs.namespaceHost
output dataverseSendRuleId string = messaging.outputs.dataverseSendRuleId
output keyVaultName string = vault.outputs.vaultName
output identityPrincipalId string = identity.outputs.principalId
output identityClientId string = identity.outputs.clientId
