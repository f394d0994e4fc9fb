"""Projects V2 (msdyn_projects): Dataverse projects → Finance projects.

Reference: maps/15-msdyn_projects-projects-v2.md. Projects are created and deleted only in
Dataverse; Finance adds accounting defaults on its side. Documented: the start date comes from
msdyn_actualstart, the project stage from statecode (InProcess ↔ 0, completed ↔ 1), the company from
the owning company. The rest follows the PSA Data Integrator template into the same entity.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import contract_number, customer_account
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
    ValueMap,
    company_from_lookup,
)
from shared.values import user_local_day

_PICKED_DAY = "DateOnly/UserLocal in the live schema: the picked day, not the UTC one"

PROJECT_STAGE = ValueMap("statecode → ProjectStage", {0: "InProcess", 1: "Completed"}, provenance=DOC)

MAP = TableMap(
    name="projects-v2",
    title="Projects V2 (msdyn_projects)",
    reference="maps/15-msdyn_projects-projects-v2.md",
    source=SourceSide(System.DATAVERSE, "msdyn_project", "msdyn_projects", ("msdyn_projectid",)),
    target=TargetSide(System.FINANCE, "ProjectsV2", ("dataAreaId", "ProjectId"), INF),
    company=company_from_lookup("msdyn_owningcompany", "dataAreaId", DOC),
    fields=(
        FieldMap(
            "msdyn_projectnumber",
            "ProjectId",
            provenance=INF,
            note="Microsoft's actuals map reads msdyn_project.msdyn_projectnumber; PSA used msdynce_projectnumber",
        ),
        FieldMap("msdyn_subject", "ProjectName", provenance=INF, note="PSA-DI pair"),
        FieldMap("msdyn_description", "Description", provenance=INF),
        FieldMap(
            "msdyn_scheduledstart",
            "ProjectedStartDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=INF,
            note=f"PSA-DI pair; {_PICKED_DAY}",
        ),
        FieldMap(
            "msdyn_finish",
            "ProjectedEndDate",
            FieldType.DATE,
            provenance=INF,
            note="PSA-DI pair on msdyn_scheduledend, which Project Operations replaced by msdyn_finish (DateAndTime)",
        ),
        FieldMap(
            "msdyn_actualstart",
            "ActualStartDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=DOC,
            note=f"fix 2125274: start date from msdyn_actualstart; {_PICKED_DAY}",
        ),
        FieldMap(
            "msdyn_actualend",
            "ActualEndDate",
            FieldType.DATE,
            transform=user_local_day,
            provenance=INF,
            note=f"PSA-DI pair; {_PICKED_DAY}",
        ),
        FieldMap("statecode", "ProjectStage", FieldType.ENUM, value_map=PROJECT_STAGE, provenance=DOC),
    ),
    lookups=(
        customer_account(
            "msdyn_customer",
            "CustomerAccountNumber",
            required=False,
            note="PSA-DI: msdyn_customer.accountnumber; the customer must exist in Finance first",
        ),
        contract_number(
            "msdyn_salesorderid",
            "ProjectContractId",
            "msdyn_salesorderid.msdyn_salesordernumber; empty for internal projects, else in Finance first",
            required=False,
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
