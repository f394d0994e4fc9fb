"""CSDL for the simulator's tables, shaped like Dataverse's own `$metadata`."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from sandbox.dataverse.schema import Table

EDM = {
    "string": "Edm.String",
    "int": "Edm.Int32",
    "bigint": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "money": "Edm.Decimal",
    "bool": "Edm.Boolean",
    "date": "Edm.Date",
    "datetime": "Edm.DateTimeOffset",
    "guid": "Edm.Guid",
    "picklist": "Edm.Int32",
}


BASE = "crmbaseentity"


def _stub(logical: str) -> list[str]:
    """A table a lookup points at that the sandbox does not hold: declared, as Dataverse declares every
    table, so the navigation property's type and its constraint's key resolve for any CSDL reader."""
    return [
        f'<EntityType Name={quoteattr(logical)} BaseType="mscrm.{BASE}">',
        f'<Key><PropertyRef Name="{logical}id"/></Key>',
        f'<Property Name="{logical}id" Type="Edm.Guid" Nullable="false"/>',
        "</EntityType>",
    ]


def csdl(schema: dict[str, Table]) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
        # Every Dataverse entity type derives from this abstract, keyless type.
        f'<EntityType Name="{BASE}" Abstract="true"/>',
    ]
    stubs: set[str] = set()
    for table in schema.values():
        lines.append(f'<EntityType Name={quoteattr(table.logical)} BaseType="mscrm.{BASE}">')
        lines.append(f'<Key><PropertyRef Name="{table.primary}"/></Key>')
        key_parts = {table.primary}
        for name, column in table.columns.items():
            nullable = ' Nullable="false"' if name in key_parts else ""
            if column.type == "lookup":
                lines.append(f'<Property Name="_{name}_value" Type="Edm.Guid"/>')
                for target, navigation in column.navigation.items():
                    if target and target not in schema:
                        stubs.add(target)
                    referenced_primary = schema[target].primary if target in schema else f"{target}id"
                    referenced_key = f' ReferencedProperty="{referenced_primary}"' if target else ""
                    # As Dataverse writes it: the constraint ties the navigation property to its lookup column.
                    lines.append(
                        f'<NavigationProperty Name={quoteattr(navigation)} Type="mscrm.{target or BASE}">'
                        f'<ReferentialConstraint Property="_{name}_value"{referenced_key}/></NavigationProperty>'
                    )
            else:
                lines.append(f'<Property Name="{name}" Type="{EDM.get(column.type, "Edm.String")}"{nullable}/>')
        if table.alternate_keys:
            lines.append('<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>')
            for key in table.alternate_keys:
                lines.append('<Record Type="OData.Community.Keys.V1.AlternateKey">')
                lines.append('<PropertyValue Property="Key"><Collection>')
                for part in key:
                    lines.append(
                        '<Record Type="OData.Community.Keys.V1.PropertyRef">'
                        f'<PropertyValue Property="Alias" String="{part}"/>'
                        f'<PropertyValue Property="Name" PropertyPath="{part}"/></Record>'
                    )
                lines.append("</Collection></PropertyValue></Record>")
            lines.append("</Collection></Annotation>")
        lines.append("</EntityType>")
    for logical in sorted(stubs):
        lines += _stub(logical)
    lines.append('<EntityContainer Name="System">')
    for table in schema.values():
        lines.append(f'<EntitySet Name="{table.entity_set}" EntityType="Microsoft.Dynamics.CRM.{table.logical}"/>')
    lines += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(lines)
