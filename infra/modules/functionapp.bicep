// Flex Consumption plan and the Python function app, identity-based connections only.

param name string
param location string
param storageAccountName string
param deploymentContainerUrl string
param tableEndpoint string
param serviceBusNamespaceHost string
@secure()
param appInsightsConnectionString string
param instanceMemoryMB int
param maximumInstanceCount int
@description('Resource id of the user-assigned identity (identity.bicep), already holding its roles.')
param identityId string
param identityClientId string
param identityPrincipalId string
@description('Role definition id of the narrow settings switch (roles.bicep) that pause/resume needs.')
param settingsSwitchRoleId string
@description('PROJOPS_* settings from main.bicep.')
param settings object
@secure()
@description('The app settings the app has now (empty on a first deployment), kept under the template\'s own.')
param existingAppSettings object = {}
@description('Subnet (delegated to Microsoft.App/environments) the app joins; empty: no VNet integration.')
param subnetId string = ''

resource plan 'Microsoft.Web/serverfarms@2025-05-01' = {
  name: 'asp-${name}'
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

var appName = 'func-${name}'

var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  ServiceBus__fullyQualifiedNamespace: serviceBusNamespaceHost
  ServiceBus__credential: 'managedidentity'
  ServiceBus__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PROJOPS_STATE_TABLES_ACCOUNT_URL: tableEndpoint
  PROJOPS_MANAGED_IDENTITY_CLIENT_ID: identityClientId
  // DefaultAzureCredential (the state tables, pause, backlog) picks the user-assigned identity by it:
  // with no system-assigned identity, a credential without a client id gets no token.
  AZURE_CLIENT_ID: identityClientId
  // pause/resume flips AzureWebJobs.<function>.Disabled through Resource Manager: the app needs its own id.
  PROJOPS_FUNCTION_APP_RESOURCE_ID: resourceId('Microsoft.Web/sites', appName)
  // The host reads a request's whole body before the worker's own limits (PROJOPS_WEBHOOK_MAX_BYTES,
  // 1 MiB) and the webhook key are checked: without this an anonymous caller could send each instance
  // 100 MB, the host's default. 4 MiB stays above any body the app takes.
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '4194304'
}

// A deployment replaces every app setting. What the app has now comes first, so the settings only an
// operator sets (AzureWebJobs.<function>.Disabled from pause, PROJOPS_MILESTONE_INVOICED_CUTOVER)
// survive a redeploy, and the template's own settings come last, so they win.
var appSettings = union(existingAppSettings, platformSettings, settings)

resource app 'Microsoft.Web/sites@2025-05-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  tags: {
    // azd finds the app to publish to by this tag (azure.yaml, service `api`).
    'azd-service-name': 'api'
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity, which holds Key Vault Secrets User.
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Publishing goes through Entra (az, func, azd); no user name and password for FTP or the SCM site.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-05-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-05-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

// pause/resume reads and writes this app's settings, nothing else (no code, no keys, no delete).
resource settingsSwitch 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(app.id, identityPrincipalId, settingsSwitchRoleId)
  scope: app
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: settingsSwitchRoleId
  }
}

output appName string = app.name
output appId string = app.id
