"""Legal entities (cdm_companies): Finance legal entities → Dataverse companies. A prerequisite map.

Reference: maps/01-prereq-cdm_companies.md (field map documented in the 2020 dual-write template:
NAME = cdm_name, LEGALENTITYID = cdm_companycode). Finance is master; every Project Operations
table resolves its owning company through cdm_companycode, so this map runs first.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, FieldMap, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="legal-entities",
    title="Legal entities (cdm_companies)",
    reference="maps/01-prereq-cdm_companies.md",
    source=SourceSide(System.FINANCE, "OMLegalEntity", "LegalEntities", ("LegalEntityId",), events=("omlegalentity",)),
    target=TargetSide(System.DATAVERSE, "cdm_companies", ("cdm_companycode",), DOC),
    fields=(
        FieldMap("LegalEntityId", "cdm_companycode", transform=str.upper, provenance=DOC, note="key (IMG)"),
        FieldMap("Name", "cdm_name", provenance=DOC),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes="Finance entity and collection names are inferred (not in stored sources).",
)
bp = flow_blueprint(MAP)
