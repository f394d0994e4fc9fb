"""Project tasks (msdyn_projecttasks): the Dataverse work breakdown → Finance, for reference.

Reference: maps/16-msdyn_projecttasks.md. Documented: Dataverse → Finance for reference purposes
only (Finance users cannot create, change or delete them); Project Operations orders the WBS by
outline level and display sequence. Finance knows a task by its activity number (its transactions
and errors name it; the actuals map sends msdyn_task.msdyn_activitynumber as the task number), so
the task's key in Finance (dataAreaId, ProjectId, TaskId) takes the activity number as TaskId, the
number the estimates send as ActivityNumber. The hierarchy is carried by element id: a task's own
Dataverse id is its TaskElementId, and its parent's id its ParentTaskElementId. Other pairs follow
the PSA Data Integrator template. That template left out PSA's resource line tasks; Project
Operations has none (msdyn_islinetask is deprecated and absent from its schema), so every task syncs.
"""

from functions.flow_blueprint import flow_blueprint
from functions.lookups import project_number
from shared.events import Operation
from shared.maps import (
    MET,
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
    target=TargetSide(System.FINANCE, "ProjectTasks", ("dataAreaId", "ProjectId", "TaskId"), MET),
    company=company_of_project("msdyn_project"),
    fields=(
        FieldMap(
            "msdyn_activitynumber",
            "TaskId",
            provenance=MET,
            note="the activity number Finance's transactions name the task by; key part",
        ),
        FieldMap(
            "msdyn_projecttaskid",
            "TaskElementId",
            # Edm.String in the live $metadata: a Guid's text, and "" (not the zero Guid) when empty.
            FieldType.STRING,
            provenance=MET,
            note="PSA-DI: = TASK; the element id the subtasks' parent id points at",
        ),
        FieldMap("msdyn_subject", "TaskName", provenance=MET, note="PSA-DI: = NAME"),
        FieldMap(
            "msdyn_parenttask",
            "ParentTaskElementId",
            FieldType.STRING,  # Edm.String, as TaskElementId: a top-level task's empty parent is ""
            provenance=MET,
            note="the parent's element id",
        ),
        FieldMap("msdyn_outlinelevel", "TaskOutlineLevel", FieldType.INT, provenance=MET),
        FieldMap("msdyn_displaysequence", "TaskDisplaySequence", FieldType.DECIMAL, provenance=MET),
    ),
    lookups=(
        project_number(
            "msdyn_project",
            "ProjectId",
            must_be_in_finance=True,
            note="PSA-DI: msdyn_project.(project number); key part",
            provenance=MET,
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    notes=(
        "TaskSubject and TaskOwningCompany (CDM 10.0.13) are not on the published entity: the subject "
        "goes to TaskName only, and the company is the key's dataAreaId. A task without an activity "
        "number has no key in Finance and is parked."
    ),
)

bp = flow_blueprint(MAP)
