"""Reading OData CSDL ($metadata) into entity sets, properties, keys and enum members."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass
class EntityType:
    name: str
    properties: dict[str, str] = field(default_factory=dict)  # name → Edm or enum type
    navigation: dict[str, str] = field(default_factory=dict)  # name → target type
    key: tuple[str, ...] = ()
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)
    # Single-valued navigation property → the `_x_value` property its referential constraint names.
    constraints: dict[str, str] = field(default_factory=dict)

    def has_field(self, name: str) -> bool:
        return name in self.properties or name in self.navigation

    def lookup_column(self, navigation: str) -> str | None:
        """The lookup column (logical name) behind a navigation property, when $metadata says."""
        value = self.constraints.get(navigation)
        if value is None or not (value.startswith("_") and value.endswith("_value")):
            return None
        return value[1:-6]

    def navigation_for(self, column: str) -> list[str]:
        """The navigation properties that bind the lookup column `column` (one per target table)."""
        return [nav for nav, value in self.constraints.items() if value == f"_{column}_value"]

    def all_keys(self) -> list[tuple[str, ...]]:
        return [self.key, *self.alternate_keys]

    def key_sets(self) -> list[set[str]]:
        """Every key as a set of names, with lookup key parts also spelled `_x_value` as URLs use them."""
        spelled = []
        for key in self.all_keys():
            spelled.append(set(key))
            # A lookup's navigation property need not share its column's name, so look for the column.
            spelled.append(
                {f"_{k}_value" if k in self.navigation or f"_{k}_value" in self.properties else k for k in key}
            )
        return spelled


@dataclass
class Metadata:
    entity_types: dict[str, EntityType] = field(default_factory=dict)  # by qualified and short name
    entity_sets: dict[str, str] = field(default_factory=dict)  # set name → entity type name
    enums: dict[str, set[str]] = field(default_factory=dict)  # by qualified and short name

    def entity_for_set(self, entity_set: str) -> EntityType | None:
        type_name = self.entity_sets.get(entity_set)
        return None if type_name is None else self.entity_types.get(type_name)

    def enum_members(self, type_name: str) -> set[str] | None:
        return self.enums.get(type_name) or self.enums.get(type_name.rsplit(".", 1)[-1])


def _alternate_keys(entity: ET.Element) -> list[tuple[str, ...]]:
    keys = []
    for annotation in entity.iter(f"{EDM}Annotation"):
        if not annotation.get("Term", "").endswith("AlternateKeys"):
            continue
        for record in annotation.iter(f"{EDM}Record"):
            if record.get("Type", "").endswith("PropertyRef"):
                continue
            names = [p.text.strip() for p in record.iter(f"{EDM}PropertyPath") if p.text]
            names += [
                v.get("PropertyPath", "")
                for v in record.iter(f"{EDM}PropertyValue")
                if v.get("Property") == "Name" and v.get("PropertyPath")
            ]
            names += [p.get("Name", "") for p in record.iter(f"{EDM}PropertyRef") if p.get("Name")]
            if names:
                keys.append(tuple(names))
    return keys


def parse_metadata(xml_text: str | bytes) -> Metadata:
    root = ET.fromstring(xml_text)
    metadata = Metadata()
    for schema in root.iter(f"{EDM}Schema"):
        namespace = schema.get("Namespace", "")
        alias = schema.get("Alias")
        for element in schema.findall(f"{EDM}EnumType"):
            members = {m.get("Name", "") for m in element.findall(f"{EDM}Member")}
            for prefix in filter(None, (namespace, alias)):
                metadata.enums[f"{prefix}.{element.get('Name')}"] = members
            metadata.enums[element.get("Name", "")] = members
        for element in schema.findall(f"{EDM}EntityType"):
            entity = EntityType(name=element.get("Name", ""))
            key = element.find(f"{EDM}Key")
            if key is not None:
                entity.key = tuple(ref.get("Name", "") for ref in key.findall(f"{EDM}PropertyRef"))
            for prop in element.findall(f"{EDM}Property"):
                entity.properties[prop.get("Name", "")] = prop.get("Type", "")
            for nav in element.findall(f"{EDM}NavigationProperty"):
                entity.navigation[nav.get("Name", "")] = nav.get("Type", "")
                constraint = nav.find(f"{EDM}ReferentialConstraint")
                if constraint is not None and constraint.get("Property"):
                    entity.constraints[nav.get("Name", "")] = constraint.get("Property", "")
            entity.alternate_keys = _alternate_keys(element)
            for prefix in filter(None, (namespace, alias)):
                metadata.entity_types[f"{prefix}.{entity.name}"] = entity
            metadata.entity_types[entity.name] = entity
        for container in schema.findall(f"{EDM}EntityContainer"):
            for entity_set in container.findall(f"{EDM}EntitySet"):
                metadata.entity_sets[entity_set.get("Name", "")] = entity_set.get("EntityType", "")
    return metadata
