"""Project resource roles for all companies (bookableresourcecategories): Dataverse → Finance.

Reference: maps/10-bookableresourcecategories.md. Roles are not company-specific in Dataverse, and
the map writes them to Finance's cross-company entity (ResourceCategoriesShared, keyed by RoleId
alone); Finance then creates the company-specific role in every legal entity itself (documented:
"the system automatically creates respective company-specific resource roles records ... for all
legal entities"). Dual-write refuses to map a cross-company table to a company-specific entity
(DIPV1002), which also points at the shared entity. Documented key: msdyn_resourcecategorynumber
(Finance RoleId). Roles are reference data: never deleted from Finance.
"""

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, INF, MET, FieldMap, FieldType, SourceSide, System, TableMap, TargetSide, ValueMap

# IsCategoryDisabled is Finance's FalseTrue enum, not NoYes: "Yes"/"No" would be refused.
ROLE_DISABLED = ValueMap("statecode → IsCategoryDisabled", {0: "False", 1: "True"}, provenance=INF)

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
    target=TargetSide(System.FINANCE, "ResourceCategoriesShared", ("RoleId",), MET),
    fields=(
        FieldMap("msdyn_resourcecategorynumber", "RoleId", provenance=DOC, note="integration key (IMG)"),
        FieldMap("name", "Description", provenance=MET),
        FieldMap(
            "statecode",
            "IsCategoryDisabled",
            FieldType.ENUM,
            value_map=ROLE_DISABLED,
            provenance=MET,
            note="an inactive role is disabled",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes=(
        "One row per role: the per-company ResourceCategories rows are Finance's to create from it, so "
        "the map neither fans out per legal entity nor writes them."
    ),
)

bp = flow_blueprint(MAP)
