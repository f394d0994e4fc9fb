// The app's user-assigned identity. It exists, and holds its roles (roles.bicep), before the function
// app is created, so the app's first start already reaches Storage, Service Bus and Key Vault; a
// system-assigned identity only exists once the app does, so its first start would fail until the
// role assignments propagate.

param name string
param location string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-${name}'
  location: location
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
