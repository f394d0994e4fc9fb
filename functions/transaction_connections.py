"""Transaction connections (msdyn_transactionconnections) → Finance transaction relationship staging.

Reference: maps/11-msdyn_transactionconnections.md. Documented: Dataverse → Finance; Finance's Import
from staging uses these links when it creates integration journal lines and invoice proposal lines.
The seven field pairs are the PSA Data Integrator template's into the same Finance entity (full
proxy, inferred). A connection is not company-specific in either system.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.extensions import EXTENSION_TRANSACTION_RELATIONSHIPS
from shared.maps import INF, FieldMap, FieldType, SourceSide, System, TableMap, TargetSide

MAP = TableMap(
    name="transaction-connections",
    title="Integration entity for project transaction relationships (msdyn_transactionconnections)",
    reference="maps/11-msdyn_transactionconnections.md",
    source=SourceSide(
        System.DATAVERSE,
        "msdyn_transactionconnection",
        "msdyn_transactionconnections",
        ("msdyn_transactionconnectionid",),
    ),
    target=TargetSide(
        System.FINANCE,
        "ProjectTransactionRelationships",
        ("ConnectionId",),
        INF,
        requires_extension=EXTENSION_TRANSACTION_RELATIONSHIPS,
    ),
    fields=(
        FieldMap("msdyn_transactionconnectionid", "ConnectionId", FieldType.GUID, provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction1", "Transaction1Id", FieldType.GUID, provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction1role", "Transaction1Role", provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction1type", "Transaction1Type", provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction2", "Transaction2Id", FieldType.GUID, provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction2role", "Transaction2Role", provenance=INF, note="PSA-DI ="),
        FieldMap("msdyn_transaction2type", "Transaction2Type", provenance=INF, note="PSA-DI ="),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
)

bp = flow_blueprint(MAP)
