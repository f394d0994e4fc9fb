// Alert rules: parked events, dead letters, function failures, backlog age, reconcile drift. Queries: docs/operations.md.

param name string
param location string
param appInsightsId string
param serviceBusNamespaceId string
@description('Action group to notify; empty: the alerts fire without notifying anyone.')
param actionGroupId string
param backlogAgeThresholdSeconds int

var actions = empty(actionGroupId) ? [] : [
  actionGroupId
]

var logAlerts = [
  {
    key: 'parked'
    title: 'projops-sync: events parked in the last 15 minutes'
    severity: 2
    query: 'traces | where customDimensions.outcome == "parked" | summarize parked = count() by flow = tostring(customDimensions.flow), reason = tostring(customDimensions.reason)'
  }
  {
    key: 'drift'
    title: 'projops-sync: reconcile found drift'
    severity: 2
    query: 'traces | where customDimensions.event == "reconcile" and toint(customDimensions.drift) > 0 | summarize drift = max(toint(customDimensions.drift)) by flow = tostring(customDimensions.flow)'
  }
  {
    key: 'failures'
    title: 'projops-sync: function invocations failed'
    severity: 1
    query: 'requests | where success == false | summarize failures = count() by operation_Name'
  }
]

resource logRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in logAlerts: {
  name: 'alert-${name}-${rule.key}'
  location: location
  properties: {
    displayName: rule.title
    severity: rule.severity
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}]

resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${name}-deadletters'
  location: 'global'
  properties: {
    description: 'projops-sync: messages dead-lettered (an unexpected exception, redelivered until MaxDeliveryCount)'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'deadlettered'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [for group in actions: {
      actionGroupId: group
    }]
  }
}

resource backlogAge 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${name}-backlog-age'
  location: location
  properties: {
    displayName: 'projops-sync: sync lag over ${backlogAgeThresholdSeconds} s'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      appInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: 'traces | where isnotempty(customDimensions.lag_ms) | extend lag_s = todouble(customDimensions.lag_ms) / 1000 | where lag_s > ${backlogAgeThresholdSeconds} | summarize lagging = count() by flow = tostring(customDimensions.flow)'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}
