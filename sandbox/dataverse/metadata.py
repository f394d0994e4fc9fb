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


def csdl(schema: dict[str, Table]) -> str:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for table in schema.values():
        lines.append(f"<EntityType Name={quoteattr(table.logical)}>")
        lines.append(f'<Key><PropertyRef Name="{table.primary}"/></Key>')
        for name, column in table.columns.items():
            if column.type == "lookup":
                lines.append(f'<Property Name="_{name}_value" Type="Edm.Guid"/>')
                for target, navigation in column.navigation.items():
                    referenced = schema.get(target)
                    referenced_key = f' ReferencedProperty="{referenced.primary}"' if referenced else ""
                    # As Dataverse writes it: the constraint ties the navigation property to its lookup column.
                    lines.append(
                        f'<NavigationProperty Name={quoteattr(navigation)} Type="mscrm.{target or "crmbaseentity"}">'
                        f'<ReferentialConstraint Property="_{name}_value"{referenced_key}/></NavigationProperty>'
                    )
            else:
                lines.append(f'<Property Name="{name}" Type="{EDM.get(column.type, "Edm.String")}"/>')
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
    lines.append('<EntityContainer Name="System">')
    for table in schema.values():
        lines.append(f'<EntitySet Name="{table.entity_set}" EntityType="Microsoft.Dynamics.CRM.{table.logical}"/>')
    lines += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(lines)
