"""The post image register-steps registers holds every column the router keeps, under the alias the
decoder trusts (shared.decoding.images): the record is read from it and Target left unread."""

from __future__ import annotations

from functions.catalog import CATALOG
from shared.decoding.images import complete_image_alias, holds_every_column
from shared.operations.register_steps import IMAGE_POST, plan_steps


def test_each_post_image_lists_what_the_router_keeps_under_the_alias_that_says_so() -> None:
    posts = [plan for plan in plan_steps(CATALOG) if plan.image and plan.image[0] == IMAGE_POST]
    assert posts
    trusted = 0
    for plan in posts:
        assert plan.image is not None and plan.image_attributes is not None
        kept = CATALOG.dataverse_columns(plan.entity)
        listed = frozenset(plan.image_attributes.split(","))
        if kept is None:  # a document map reads the whole row: the image is merged with Target
            assert plan.image[1] == "PostImage", plan.name
            continue
        trusted += 1
        assert listed == kept, plan.name
        assert plan.image[1] == complete_image_alias(kept), plan.name
        assert holds_every_column({plan.image[1]: {"Attributes": []}}, kept)
    assert trusted > len(posts) // 2


def test_the_alias_names_the_columns_in_any_order_and_no_others() -> None:
    columns = frozenset({"name", "versionnumber", "msdyn_resourcecategorynumber"})
    alias = complete_image_alias(columns)
    assert alias == complete_image_alias(sorted(columns, reverse=True))
    assert alias != complete_image_alias(columns - {"name"})
    assert alias.replace("_", "").isalnum() and len(alias) <= 100  # an entity alias Dataverse takes
    assert not holds_every_column({alias: {"Attributes": []}}, columns - {"name"})
    assert not holds_every_column({alias: {"Attributes": []}}, None)
    assert not holds_every_column({alias: None}, columns)
