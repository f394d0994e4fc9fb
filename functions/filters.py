"""Row filters several Project Operations maps share, declared once."""

from collections.abc import Callable, Mapping
from typing import Any

from shared.maps import DOC, Filter, Provenance


def has_project(column: str, provenance: Provenance = DOC) -> Filter:
    """Finance posted lines: only those with a project ID reach Dataverse (documented for vendor
    invoice lines). The export entities call the project field ProjId."""
    return Filter(
        "lines with a project", (column,), _has_project(column), odata=f"{column} ne ''", provenance=provenance
    )


def _has_project(column: str) -> Callable[[Mapping[str, Any]], bool]:
    def predicate(row: Mapping[str, Any]) -> bool:
        return bool(row[column])

    predicate.__name__ = f"{column}_is_set"
    return predicate


def organizations_only(party_type_column: str, provenance: Provenance) -> Filter:
    """Finance parties that are organizations: they become Dataverse accounts (persons would be contacts)."""
    return Filter(
        f'{party_type_column} == "Organization"',
        (party_type_column,),
        _party_is_organization(party_type_column),
        provenance=provenance,
    )


def _party_is_organization(column: str) -> Callable[[Mapping[str, Any]], bool]:
    def predicate(row: Mapping[str, Any]) -> bool:
        return bool(row[column] == "Organization")

    predicate.__name__ = f"{column}_is_organization"
    return predicate


def of_class(label: str, classification: int, provenance: Provenance = DOC) -> Filter:
    """Estimate lines of one transaction class (msdyn_transactionclassification)."""
    return Filter(
        f"transaction class {label}",
        ("msdyn_transactionclassification",),
        _class_is(classification),
        odata=f"msdyn_transactionclassification eq {classification}",
        provenance=provenance,
    )


def _class_is(classification: int) -> Callable[[Mapping[str, Any]], bool]:
    def predicate(row: Mapping[str, Any]) -> bool:
        return bool(row["msdyn_transactionclassification"] == classification)

    predicate.__name__ = f"class_is_{classification}"
    return predicate
