// Log Analytics workspace, Application Insights on it, and the projops-sync workbook.

param name string
param location string

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: 'log-${name}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 90
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // Telemetry is sent with the app's identity (Monitoring Metrics Publisher), not the key alone.
    DisableLocalAuth: true
  }
}

var workbook = loadTextContent('workbook.json')

resource projopsWorkbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, name, 'projops-workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: 'projops-sync ${name}'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: workbook
  }
}

output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
