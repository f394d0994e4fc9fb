"""A lookup bound into Dataverse is written under its navigation property, and check-maps proves that name.

The Web API takes `X@odata.bind` only where X is a single-valued navigation property of the target,
matched case-sensitively; a lookup column's navigation property often differs from its logical name
(msdyn_project.msdyn_owningcompany binds as msdyn_OwningCompany).
"""

from __future__ import annotations

from shared.cache import TtlCache
from shared.events import ChangeEvent, Operation, Source
from shared.maps import (
    FieldMap,
    Lookup,
    Registry,
    SourceSide,
    System,
    TableMap,
    TargetSide,
    company_from_field,
)
from shared.operations.check_maps import check_maps
from shared.operations.metadata import parse_metadata
from shared.outcomes import OutcomeKind
from shared.pipeline import Engine, apply_event
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState
from tests.unit.test_pipeline import USMF, make_settings

MAP = TableMap(
    name="bind-test",
    title="a Finance row bound into a Dataverse project",
    source=SourceSide(System.FINANCE, "TestEntity", "TestEntities", ("dataAreaId", "Number")),
    target=TargetSide(System.DATAVERSE, "msdyn_projects", ("msdyn_projectnumber",)),
    fields=(FieldMap("Number", "msdyn_projectnumber"),),
    company=company_from_field("dataAreaId"),
    lookups=(
        Lookup(
            "Company",
            "msdyn_owningcompany",
            bind_set="cdm_companies",
            bind_key="cdm_companycode",
            navigation="msdyn_OwningCompany",
        ),
        Lookup("Currency", "transactioncurrencyid", bind_set="transactioncurrencies", bind_key="isocurrencycode"),
        Lookup(
            "Customer",
            "msdyn_customer",
            bind_set="accounts",
            bind_key="accountnumber",
            resolve_id="accountid",
            company_column="_msdyn_company_value",
            navigation="msdyn_Customer",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

CUSTOMER = "a1000000-0000-4000-8000-000000000001"
CURRENCY = "a1000000-0000-4000-8000-0000000000c1"


def event(**record: str | None) -> ChangeEvent:
    return ChangeEvent(
        event_id="b-1",
        flow="bind-test",
        source=Source.FINANCE,
        entity="testentity",
        operation=Operation.CREATE,
        key="USMF|P-1",
        company="USMF",
        record={"dataAreaId": "usmf", "Number": "P-1", **record},
    )


async def _written(**record: str | None) -> dict[str, object]:
    dataverse = FakeDataverse()
    dataverse.add("cdm_companies", USMF, {"cdm_companyid": USMF, "cdm_companycode": "USMF"})
    dataverse.add(
        "accounts", CUSTOMER, {"accountid": CUSTOMER, "accountnumber": "US-001", "_msdyn_company_value": USMF}
    )
    dataverse.add("transactioncurrencies", CURRENCY, {"transactioncurrencyid": CURRENCY, "isocurrencycode": "US/D"})
    # The flow reads the row Finance holds now: the fake holds the event's row.
    finance = FakeFinance(key_fields={"TestEntities": ("dataAreaId", "Number")})
    finance.add("TestEntities", {"dataAreaId": "usmf", "Number": "P-1", **record})
    engine = Engine(make_settings(), dataverse, finance, MemoryState(), TtlCache(60))
    outcome = await apply_event(engine, MAP, event(**record))
    assert outcome.kind is OutcomeKind.WRITTEN, outcome
    _, _, _, body = dataverse.writes[-1]
    return body


async def test_the_bind_is_named_by_the_navigation_property() -> None:
    body = await _written(Company="USMF", Currency="USD", Customer="US-001")
    assert body["msdyn_OwningCompany@odata.bind"] == "/cdm_companies(cdm_companycode='USMF')"
    assert body["msdyn_Customer@odata.bind"] == f"/accounts({CUSTOMER})"
    # Without a navigation property of its own, a lookup binds under its column's name.
    assert body["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"
    assert not {"msdyn_owningcompany@odata.bind", "msdyn_customer@odata.bind"} & set(body)


async def test_an_emptied_reference_is_cleared_under_the_navigation_property() -> None:
    body = await _written(Company="", Currency="USD", Customer=None)
    assert body["msdyn_OwningCompany@odata.bind"] is None
    assert body["msdyn_Customer@odata.bind"] is None
    assert "msdyn_owningcompany@odata.bind" not in body


CSDL = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>
<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
<EntityType Name="msdyn_project"><Key><PropertyRef Name="msdyn_projectid"/></Key>
<Property Name="msdyn_projectid" Type="Edm.Guid"/><Property Name="msdyn_projectnumber" Type="Edm.String"/>
<Property Name="_msdyn_owningcompany_value" Type="Edm.Guid"/>
<NavigationProperty Name="msdyn_OwningCompany" Type="mscrm.cdm_company">
<ReferentialConstraint Property="_msdyn_owningcompany_value" ReferencedProperty="cdm_companyid"/></NavigationProperty>
<Property Name="_transactioncurrencyid_value" Type="Edm.Guid"/>
<NavigationProperty Name="transactioncurrencyid" Type="mscrm.transactioncurrency">
<ReferentialConstraint Property="_transactioncurrencyid_value" ReferencedProperty="transactioncurrencyid"/>
</NavigationProperty>
<Property Name="_msdyn_customer_value" Type="Edm.Guid"/>
<NavigationProperty Name="msdyn_customer" Type="mscrm.account">
<ReferentialConstraint Property="_msdyn_customer_value" ReferencedProperty="accountid"/></NavigationProperty>
<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>
<Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key"><Collection>
<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="msdyn_projectnumber"/>
<PropertyValue Property="Name" PropertyPath="msdyn_projectnumber"/></Record></Collection></PropertyValue></Record>
</Collection></Annotation></EntityType>
<EntityType Name="cdm_company"><Key><PropertyRef Name="cdm_companyid"/></Key>
<Property Name="cdm_companyid" Type="Edm.Guid"/><Property Name="cdm_companycode" Type="Edm.String"/>
<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>
<Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key"><Collection>
<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="cdm_companycode"/>
<PropertyValue Property="Name" PropertyPath="cdm_companycode"/></Record></Collection></PropertyValue></Record>
</Collection></Annotation></EntityType>
<EntityType Name="transactioncurrency"><Key><PropertyRef Name="transactioncurrencyid"/></Key>
<Property Name="transactioncurrencyid" Type="Edm.Guid"/><Property Name="isocurrencycode" Type="Edm.String"/>
<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>
<Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key"><Collection>
<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="isocurrencycode"/>
<PropertyValue Property="Name" PropertyPath="isocurrencycode"/></Record></Collection></PropertyValue></Record>
</Collection></Annotation></EntityType>
<EntityType Name="account"><Key><PropertyRef Name="accountid"/></Key>
<Property Name="accountid" Type="Edm.Guid"/><Property Name="accountnumber" Type="Edm.String"/>
<Property Name="_msdyn_company_value" Type="Edm.Guid"/>
<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>
<Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key"><Collection>
<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="accountnumber"/>
<PropertyValue Property="Name" PropertyPath="accountnumber"/></Record>
<Record Type="OData.Community.Keys.V1.PropertyRef"><PropertyValue Property="Alias" String="msdyn_company"/>
<PropertyValue Property="Name" PropertyPath="msdyn_company"/></Record></Collection></PropertyValue></Record>
</Collection></Annotation></EntityType>
<EntityContainer Name="System">
<EntitySet Name="msdyn_projects" EntityType="Microsoft.Dynamics.CRM.msdyn_project"/>
<EntitySet Name="cdm_companies" EntityType="Microsoft.Dynamics.CRM.cdm_company"/>
<EntitySet Name="transactioncurrencies" EntityType="Microsoft.Dynamics.CRM.transactioncurrency"/>
<EntitySet Name="accounts" EntityType="Microsoft.Dynamics.CRM.account"/>
</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"""


def test_check_maps_proves_the_bind_name_exact_case() -> None:
    dataverse = parse_metadata(CSDL)
    problems = [p for p in check_maps(Registry((MAP,)), dataverse, parse_metadata(CSDL)) if p.system == "dataverse"]
    described = {(p.what, p.name): p.detail for p in problems}
    # msdyn_OwningCompany and transactioncurrencyid are declared; msdyn_Customer is not (it is msdyn_customer).
    assert set(described) == {("bind navigation", "msdyn_Customer")}, problems
    detail = described[("bind navigation", "msdyn_Customer")]
    assert "msdyn_projects" in detail and "msdyn_customer" in detail  # names the navigation property that exists


def test_check_maps_refuses_the_logical_name_where_the_navigation_property_differs() -> None:
    bound_by_column = TableMap(
        name="bind-by-column",
        title="a bind named by the lookup column",
        source=MAP.source,
        target=MAP.target,
        fields=MAP.fields,
        lookups=(Lookup("Company", "msdyn_owningcompany", bind_set="cdm_companies", bind_key="cdm_companycode"),),
    )
    dataverse = parse_metadata(CSDL)
    [problem] = [p for p in check_maps(Registry((bound_by_column,)), dataverse, dataverse) if p.system == "dataverse"]
    assert (problem.what, problem.name) == ("bind navigation", "msdyn_owningcompany")
    assert "msdyn_OwningCompany" in problem.detail


async def test_a_value_dataverse_cannot_address_is_bound_by_the_rows_own_id() -> None:
    """Define alternate keys using Power Apps: a key value holding / does not work in a URL, so the
    bind names the row by its primary id, found under the entity set's own id column."""
    body = await _written(Company="USMF", Currency="US/D", Customer="US-001")
    assert body["transactioncurrencyid@odata.bind"] == f"/transactioncurrencies({CURRENCY})"
