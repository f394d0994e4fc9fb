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
@description('PROJOPS_* settings from main.bicep.')
param settings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
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

var platformSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  ServiceBus__fullyQualifiedNamespace: serviceBusNamespaceHost
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  PROJOPS_STATE_TABLES_ACCOUNT_URL: tableEndpoint
}

var allSettings = union(platformSettings, settings)

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${name}'
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [for setting in items(allSettings): {
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
            type: 'SystemAssignedIdentity'
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

// pause/resume flips AzureWebJobs.<function>.Disabled through Resource Manager: the app needs its own id.
resource resourceIdSetting 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(allSettings, {
    PROJOPS_FUNCTION_APP_RESOURCE_ID: app.id
  })
}

output appName string = app.name
output appId string = app.id
output principalId string = app.identity.principalId
