"""Worker (cdm_workers): Finance workers → Dataverse. A prerequisite map (Finance is master).

Reference: maps/06-prereq-cdm_workers.md (field map documented in the 2020 dual-write template).
Bookable resources link to workers for employment default dimensions on integration journals.
Worker type, status and gender have value maps in that template whose pairs are not published;
they are left out until they can be read from a live environment.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, INF, FieldMap, FieldType, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="workers",
    title="Worker (cdm_workers)",
    reference="maps/06-prereq-cdm_workers.md",
    source=SourceSide(System.FINANCE, "HcmWorkerEntity", "Workers", ("PersonnelNumber",), events=("hcmworkerentity",)),
    target=TargetSide(System.DATAVERSE, "cdm_workers", ("cdm_workernumber",), INF),
    fields=(
        FieldMap("PersonnelNumber", "cdm_workernumber", provenance=DOC, note="key inferred from the = pair"),
        FieldMap("FirstName", "cdm_firstname", provenance=DOC),
        FieldMap("MiddleName", "cdm_middlename", provenance=DOC),
        FieldMap("LastName", "cdm_lastname", provenance=DOC),
        FieldMap("Name", "cdm_fullname", provenance=DOC),
        FieldMap("BirthDate", "cdm_birthdate", FieldType.DATE, provenance=DOC),
        FieldMap("PrimaryContactEmail", "cdm_primaryemailaddress", provenance=DOC),
        FieldMap("PrimaryContactPhone", "cdm_primarytelephone", provenance=DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes="Finance entity and collection names are inferred.",
)

bp = flow_blueprint(MAP)
