"""How reconcile reads a target's value against what the map would write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from functions.catalog import CATALOG
from shared.cli import reconcile_exit_code
from shared.operations.reconcile import FieldDifference, field_differences, key_text, same_value

ACTUALS = CATALOG.by_name("actuals")  # Finance target
EXPENSES = CATALOG.by_name("expenses")  # Dataverse target


def test_finance_blanks_are_empty_and_values_are_read_as_their_type() -> None:
    assert same_value(ACTUALS, "Amount", Decimal("20.50"), Decimal("20.5"))
    assert not same_value(ACTUALS, "Amount", Decimal("20.50"), Decimal("99.5"))
    assert same_value(ACTUALS, "Amount", None, Decimal(0))
    assert same_value(ACTUALS, "StartDate", None, "1900-01-01T12:00:00Z")
    assert same_value(ACTUALS, "ProjectId", None, "")
    assert not same_value(ACTUALS, "ProjectId", None, "PRJ-1")
    assert same_value(ACTUALS, "DocumentDate", "2026-11-02T12:00:00Z", datetime(2026, 11, 2, 12, tzinfo=UTC))
    assert not same_value(ACTUALS, "DocumentDate", "2026-11-02T12:00:00Z", "2026-11-03T12:00:00Z")


def test_dataverse_has_nulls_and_binds_are_not_compared() -> None:
    assert same_value(EXPENSES, "msdyn_amount", None, None)
    assert not same_value(EXPENSES, "msdyn_amount", None, Decimal(0))
    # Finance's empty string is Dataverse's null.
    assert same_value(EXPENSES, "msdyn_description", "", None)
    assert not same_value(EXPENSES, "msdyn_description", "", "a text")
    expected = {"msdyn_amount": Decimal("5"), "transactioncurrencyid@odata.bind": "/transactioncurrencies(x)"}
    actual = {"msdyn_amount": Decimal("6"), "_transactioncurrencyid_value": "1d2c"}
    assert field_differences(EXPENSES, expected, actual) == [
        FieldDifference("msdyn_amount", Decimal("5"), Decimal("6"))
    ]


def test_keys_compare_without_case_or_braces() -> None:
    upper = {"dataAreaId": "USMF", "ActualsImportId": "{61540D42-8805-54E2-B345-D7F085CCBBB5}"}
    lower = {"dataAreaId": "usmf", "ActualsImportId": "61540d42-8805-54e2-b345-d7f085ccbbb5"}
    assert key_text(ACTUALS, upper) == key_text(ACTUALS, lower)
    assert key_text(ACTUALS, lower) != key_text(ACTUALS, {**lower, "dataAreaId": "uspi"})


def test_a_field_finance_moves_on_after_posting_is_not_drift() -> None:
    # Finance journalizes a staged actual (IsJournalized No → Yes): that is Finance's own step, not
    # drift, and a repair must not send No back. Amount is still judged.
    expected = {"IsJournalized": "No", "Amount": Decimal("20.50")}
    actual = {"IsJournalized": "Yes", "Amount": Decimal("21.50")}
    assert field_differences(ACTUALS, expected, actual) == [
        FieldDifference("Amount", Decimal("20.50"), Decimal("21.50"))
    ]


def test_an_enum_the_map_leaves_empty_holds_whatever_member_finance_defaults_to() -> None:
    """The flow cannot clear an enum (there is no empty member to send): reported, it would be drift
    no repair could remove."""
    assert same_value(ACTUALS, "BillingType", None, "NotSpecified")
    assert not same_value(ACTUALS, "BillingType", "Chargeable", "NotSpecified")


def test_the_exit_code_says_drift_is_left_when_a_repair_cannot_remove_it() -> None:
    def report(repair: dict[str, int] | None = None, **totals: int) -> dict[str, object]:
        counts = {"missing": 0, "different": 0, "orphaned": 0, "unmappable": 0, **totals}
        return {"totals": counts, "repair": repair}

    assert reconcile_exit_code(report(), repaired=False) == 0
    assert reconcile_exit_code(report(different=2), repaired=False) == 1
    assert reconcile_exit_code(report({"sent": 2, "deletes": 0, "orphans_listed": 0}, different=2), repaired=True) == 0
    assert reconcile_exit_code(report({"sent": 0, "deletes": 0, "orphans_listed": 1}, orphaned=1), repaired=True) == 1
    assert reconcile_exit_code(report({"sent": 1, "deletes": 0, "orphans_listed": 0}, unmappable=1), repaired=True) == 1
