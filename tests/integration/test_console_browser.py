"""The web console in a real browser: Debian's chromium, headless, driven by Playwright, against the sandbox.

`make test` installs chromium when /usr/bin/chromium is missing; Playwright's own browser download is
never used. PROJOPS_SCREENSHOTS=1 (`make screenshots`) saves the pictures the README shows in docs/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, ViewportSize, async_playwright

from sandbox.environment import Sandbox, SandboxOptions
from tests.integration.conftest import started

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# A laptop screen: the page must fit it without scrolling sideways.
LAPTOP = ViewportSize(width=1366, height=768)
DOCS = Path(__file__).resolve().parents[2] / "docs"
ROLES = {"B1": "Browser role one", "B2": "Browser role two"}


def screenshot_path(name: str, tmp_path: Path) -> Path:
    return DOCS / name if os.environ.get("PROJOPS_SCREENSHOTS") == "1" else tmp_path / name


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    # One attempt and no in-call retries: a broken Finance parks at once.
    async with started(SandboxOptions(retry_max_attempts=1, http_max_retries=0)) as environment:
        yield environment


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    return CHROMIUM


@pytest.fixture
async def page(sandbox: Sandbox, chromium: str) -> AsyncIterator[Page]:
    assert sandbox.host is not None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=ARGS)
        page = await browser.new_page(viewport=LAPTOP)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{sandbox.host.http_url}/api/admin/console?code={sandbox.host.function_key}")
        yield page
        await browser.close()
        assert errors == [], errors


async def no_sideways_scrolling(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= LAPTOP["width"], f"the page is {width} px wide on a {LAPTOP['width']} px screen"


async def test_the_page_lists_every_flow_and_pauses_one(sandbox: Sandbox, page: Page, tmp_path: Path) -> None:
    p = page
    rows = await p.locator("#flows tbody tr").evaluate_all("rows => rows.map(r => r.dataset.flow)")
    assert sandbox.registry is not None
    assert rows == [m.name for m in sandbox.registry.maps] + ["route-dataverse-changes", "route-finance-events"]
    await no_sideways_scrolling(p)
    assert sandbox.host is not None and not sandbox.host.is_disabled("flow_actuals")

    await p.locator('#flows tr[data-flow="actuals"] button', has_text="Pause").click()
    await p.locator("#flows .message", has_text="actuals paused").wait_for()
    assert sandbox.host.is_disabled("flow_actuals")
    state = p.locator('#flows tr[data-flow="actuals"] .state')
    assert await state.inner_text() == "paused"
    await p.screenshot(path=str(screenshot_path("console-flows.png", tmp_path)), full_page=True)

    await p.locator('#flows tr[data-flow="actuals"] button', has_text="Resume").click()
    await p.locator("#flows .message", has_text="actuals resumed").wait_for()
    assert not sandbox.host.is_disabled("flow_actuals")


async def test_initial_sync_then_replay_and_dismiss_parked_events(sandbox: Sandbox, page: Page, tmp_path: Path) -> None:
    p = page
    for number, name in ROLES.items():
        sandbox.dataverse.seed("bookableresourcecategory", {"name": name, "msdyn_resourcecategorynumber": number})
    sandbox.finance.set_faults(error_share=1.0)

    await p.get_by_role("button", name="Initial sync").click()
    await p.locator("#sync select[name=flow]").select_option("resource-roles")
    await p.get_by_role("button", name="Start").click()
    await p.locator(".run[data-done=true]").wait_for(timeout=30_000)
    assert "parked 2" in await p.locator(".run").inner_text()

    await p.get_by_role("button", name="Parked events").click()
    await p.locator("#parked select[name=flow]").select_option("resource-roles")
    await p.get_by_role("button", name="Filter").click()
    listed = p.locator("#parked tbody tr[data-parked]")
    await listed.nth(1).wait_for()
    assert await listed.count() == 2
    text = await p.locator("#parked tbody").inner_text()
    assert all(name in text for name in ROLES.values()) and "finance 503" in text

    # The detail: the target's whole error text and the event; replay from it once Finance is back.
    replayed_row = listed.filter(has_text=ROLES["B1"])
    await replayed_row.get_by_role("button", name="Detail").click()
    detail = p.locator("#parked-detail .detail")
    await detail.wait_for()
    assert (
        "An error has occurred." in await detail.inner_text()
        and '"flow": "resource-roles"' in await detail.inner_text()
    )
    await no_sideways_scrolling(p)
    await p.screenshot(path=str(screenshot_path("console-parked.png", tmp_path)))
    sandbox.finance.set_faults(error_share=0.0)
    await detail.get_by_role("button", name="Replay").click()
    await p.locator("#parked .message", has_text="replayed").wait_for()
    await sandbox.wait_quiet()
    received = {row["RoleId"]: row["Description"] for row in sandbox.finance.rows("ResourceCategoriesShared")}
    assert received.get("B1") == ROLES["B1"] and "B2" not in received

    # Dismiss the other with a reason, kept for audit.
    await listed.filter(has_text=ROLES["B2"]).get_by_role("button", name="Detail").click()
    await detail.filter(has_text=ROLES["B2"]).wait_for()
    await detail.locator("input[name=why]").fill("made by hand in Finance")
    await detail.get_by_role("button", name="Dismiss").click()
    await p.locator("#parked .message", has_text="dismissed").wait_for()
    assert sandbox.runtime is not None
    [dismissed] = await sandbox.runtime.engine.state.list_parked(status="dismissed")
    assert dismissed.closed_reason == "made by hand in Finance" and ROLES["B2"] in dismissed.event
    assert "No parked events" in await p.locator("#parked tbody").inner_text()


async def test_the_maps_tab_shows_check_maps_and_every_field_pair(sandbox: Sandbox, page: Page) -> None:
    p = page
    await p.get_by_role("button", name="Maps").click()
    await p.locator("#check-ok").wait_for()
    await p.locator("summary", has_text="resource-roles").click()
    pairs = await p.locator("details[open] tbody").inner_text()
    assert "msdyn_resourcecategorynumber" in pairs and "RoleId" in pairs and "documented" in pairs
    await no_sideways_scrolling(p)
