"""Hour estimates (msdyn_resourceassignments) → Finance hour forecast staging.

Reference: maps/24-msdyn_resourceassignments-hour-estimates.md. Documented: Dataverse → Finance only;
resource assignments (generic or named) land in ProjCDSEstimateHoursImport, which Finance turns into
hour forecasts; the bookable resource is keyed by bookableresourceid (1.0.0.6). Field pairs follow
the PSA Data Integrator hour-estimate template moved onto assignments (inferred). The forecast model
is Finance's own parameter (PM&A, Project Operations tab), so it is not sent.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import currency_code, project_number
from shared.events import Operation
from shared.maps import (
    DOC,
    INF,
    FieldMap,
    FieldType,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_of_project,
)

MAP = TableMap(
    name="hour-estimates",
    title="Project Operations integration entity for hour estimates (msdyn_resourceassignments)",
    reference="maps/24-msdyn_resourceassignments-hour-estimates.md",
    source=SourceSide(
        System.DATAVERSE, "msdyn_resourceassignment", "msdyn_resourceassignments", ("msdyn_resourceassignmentid",)
    ),
    target=TargetSide(System.FINANCE, "ProjectHourEstimates", ("dataAreaId", "EstimateHoursImportId"), INF),
    company=company_of_project("msdyn_projectid"),
    fields=(
        FieldMap("msdyn_resourceassignmentid", "EstimateHoursImportId", FieldType.GUID, provenance=INF),
        FieldMap("msdyn_taskid", "TaskId", FieldType.GUID, provenance=INF, note="PSA-DI: = TASKID"),
        FieldMap("msdyn_name", "Description", provenance=INF),
        FieldMap("msdyn_effort", "Duration", FieldType.DECIMAL, provenance=INF, note="PSA-DI: effort = DURATION"),
        FieldMap("msdyn_plannedcost", "PlannedCostAmount", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_plannedsales", "PlannedSalesAmount", FieldType.DECIMAL, provenance=INF),
        FieldMap("msdyn_start", "StartDate", FieldType.DATE, provenance=INF),
        FieldMap("msdyn_finish", "EndDate", FieldType.DATE, provenance=INF),
        FieldMap("exchangerate", "ExchangeRate", FieldType.DECIMAL, provenance=INF),
        FieldMap(
            "msdyn_bookableresourceid",
            "ResourceId",
            FieldType.GUID,
            provenance=DOC,
            note="Bookable Resource key bookableresourceid (1.0.0.6)",
        ),
    ),
    lookups=(
        project_number("msdyn_projectid", "ProjectId", must_be_in_finance=True, note="the project must be in Finance"),
        currency_code("transactioncurrencyid", "CurrencyId"),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
