"""Hour estimates (msdyn_resourceassignments) → Finance hour forecast staging.

Reference: maps/24-msdyn_resourceassignments-hour-estimates.md. Documented: Dataverse → Finance only;
resource assignments (generic or named) land in the hour estimate staging table, which Finance
turns into hour forecasts; the bookable resource is keyed by bookableresourceid (1.0.0.6). Field
pairs follow the PSA Data Integrator hour-estimate template moved onto assignments (inferred); the
names, key and types are the live $metadata's (ProjEstimateHoursImport). The task goes by its
activity number, as Finance knows tasks. The forecast model is Finance's own parameter (PM&A,
Project Operations tab), so it is not sent.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import project_number, task_activity_number
from shared.events import Operation
from shared.maps import (
    MET,
    FieldMap,
    FieldType,
    Money,
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
    target=TargetSide(System.FINANCE, "ProjEstimateHoursImport", ("dataAreaId", "EstimateHoursImportId"), MET),
    company=company_of_project("msdyn_projectid"),
    fields=(
        FieldMap("msdyn_resourceassignmentid", "EstimateHoursImportId", FieldType.GUID, provenance=MET),
        FieldMap("msdyn_name", "Description", provenance=MET),
        FieldMap("msdyn_effort", "Duration", FieldType.DECIMAL, provenance=MET, note="PSA-DI: effort = DURATION"),
        FieldMap("msdyn_plannedcost", "PlannedCostAmount", FieldType.DECIMAL, provenance=MET),
        FieldMap("msdyn_plannedsales", "PlannedSalesAmount", FieldType.DECIMAL, provenance=MET),
        FieldMap("msdyn_start", "StartDate", FieldType.DATE, provenance=MET),
        FieldMap(
            "msdyn_bookableresourceid",
            "ProjCDSResourceId",
            FieldType.GUID,
            provenance=MET,
            note="Bookable Resource key bookableresourceid (1.0.0.6); the field name is the metadata's",
        ),
    ),
    lookups=(
        project_number(
            "msdyn_projectid",
            "ProjectId",
            must_be_in_finance=True,
            note="the project must be in Finance",
            provenance=MET,
        ),
        task_activity_number("msdyn_taskid", "ActivityNumber", note="PSA-DI: = TASKID", provenance=MET),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    money=Money("PlannedCostAmount"),
    notes=(
        "Not sent, as ProjEstimateHoursImport has no such field: the end date, the exchange rate and "
        "the currency. Also on the entity but not mapped: ResourceCategoryId, TransactionCategoryId and "
        "ContractLineId, which no column of the assignment holds directly."
    ),
)

bp = flow_blueprint(MAP)
