"""Project tasks (msdyn_projecttasks): the Dataverse work breakdown → Finance, for reference.

Reference: maps/16-msdyn_projecttasks.md. Documented: Dataverse → Finance for reference purposes
only (Finance users cannot create, change or delete them); Project Operations orders the WBS by
outline level and display sequence. Field pairs follow the PSA Data Integrator template into the
CDM ProjProjectTaskEntity (inferred). That template left out PSA's resource line tasks; Project
Operations has none (msdyn_islinetask is deprecated and absent from its schema), so every task syncs.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import project_number
from shared.events import Operation
from shared.maps import (
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
    name="project-tasks",
    title="Project tasks (msdyn_projecttasks)",
    reference="maps/16-msdyn_projecttasks.md",
    source=SourceSide(System.DATAVERSE, "msdyn_projecttask", "msdyn_projecttasks", ("msdyn_projecttaskid",)),
    target=TargetSide(System.FINANCE, "ProjectTasks", ("dataAreaId", "TaskId"), INF),
    company=company_of_project("msdyn_project", also_targets=("TaskOwningCompany",)),
    fields=(
        FieldMap("msdyn_projecttaskid", "TaskId", FieldType.GUID, provenance=INF, note="PSA-DI: = TASK"),
        FieldMap("msdyn_subject", "TaskName", provenance=INF, note="PSA-DI: = NAME"),
        FieldMap("msdyn_subject", "TaskSubject", provenance=INF),
        FieldMap(
            "msdyn_parenttask", "ParentTaskElementId", FieldType.GUID, provenance=INF, note="the parent's task id"
        ),
        FieldMap("msdyn_outlinelevel", "TaskOutlineLevel", FieldType.INT, provenance=INF),
        FieldMap("msdyn_displaysequence", "TaskDisplaySequence", FieldType.DECIMAL, provenance=INF),
    ),
    lookups=(
        project_number(
            "msdyn_project", "ProjectId", must_be_in_finance=True, note="PSA-DI: msdyn_project.(project number)"
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
