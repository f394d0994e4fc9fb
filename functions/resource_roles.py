"""Project resource roles for all companies (bookableresourcecategories): Dataverse → Finance.

Reference: maps/10-bookableresourcecategories.md. Roles are not company-specific in Dataverse, so
one resource role is written per legal entity in scope (documented fan-out). Documented key:
msdyn_resourcecategorynumber (Finance RoleId). Roles are reference data: never deleted from Finance.
"""

from functions.flow_blueprint import flow_blueprint
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
    each_company_in_scope,
)


def is_inactive(statecode: object) -> bool:
    return statecode == 1


MAP = TableMap(
    name="resource-roles",
    title="Project resource roles for all companies (bookableresourcecategories)",
    reference="maps/10-bookableresourcecategories.md",
    source=SourceSide(
        System.DATAVERSE,
        "bookableresourcecategory",
        "bookableresourcecategories",
        ("bookableresourcecategoryid",),
    ),
    target=TargetSide(System.FINANCE, "ProjectResourceRoles", ("dataAreaId", "RoleId"), INF),
    company=each_company_in_scope("dataAreaId"),
    fields=(
        FieldMap("msdyn_resourcecategorynumber", "RoleId", provenance=DOC, note="integration key (IMG)"),
        FieldMap("name", "Description", provenance=INF),
        FieldMap("statecode", "IsCategoryDisabled", FieldType.NOYES, transform=is_inactive, provenance=INF),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
