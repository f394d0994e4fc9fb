"""Project tasks (msdyn_projecttasks): the Dataverse work breakdown → Finance, for reference.

Reference: maps/16-msdyn_projecttasks.md. Documented: Dataverse → Finance for reference purposes
only (Finance users cannot create, change or delete them); Project Operations orders the WBS by
outline level and display sequence. Field pairs follow the PSA Data Integrator template into the
CDM ProjProjectTaskEntity (inferred), which excluded resource-specific line tasks.
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from functions.lookups import project_number
from shared.events import Operation
from shared.maps import (
    INF,
    FieldMap,
    FieldType,
    Filter,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_of_project,
)


def _not_line_task(row: Mapping[str, Any]) -> bool:
    return row["msdyn_islinetask"] is not True


MAP = TableMap(
    name="project-tasks",
    title="Project tasks (msdyn_projecttasks)",
    reference="maps/16-msdyn_projecttasks.md",
    source=SourceSide(System.DATAVERSE, "msdyn_projecttask", "msdyn_projecttasks", ("msdyn_projecttaskid",)),
    target=TargetSide(System.FINANCE, "ProjectTasks", ("dataAreaId", "TaskId"), INF),
    company=company_of_project("msdyn_project", also_targets=("TaskOwningCompany",)),
    filter=Filter(
        "summary and leaf tasks only, not resource line tasks (msdyn_islinetask = false)",
        ("msdyn_islinetask",),
        _not_line_task,
        odata="msdyn_islinetask eq false",
        provenance=INF,
    ),
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
