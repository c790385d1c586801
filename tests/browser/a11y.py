"""Accessibility in the browser tests: axe-core (axe-playwright-python) over the page as a person sees it,
WCAG 2.0/2.1/2.2 A and AA rules, 0 violations; and screenshots at a phone's and a desktop's width, kept under
``var/test-artifacts/screenshots`` (TASDID_TEST_ARTIFACTS to move them) for people to look at."""

import os
import re
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE = {"width": 320, "height": 720}
DESKTOP = {"width": 1280, "height": 900}
_axe = Axe()


def artifacts_dir() -> Path:
    base = os.environ.get("TASDID_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
    path = Path(base) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def violations(page: Page) -> list[dict]:
    results = _axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]})
    return results.response["violations"]


def describe(found: list[dict]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {node['target']}: {node.get('failureSummary', '')!r}" for node in violation["nodes"][:5])
    return "\n".join(lines)


def check_page(page: Page, label: str) -> None:
    """Assert that the page as it stands has no WCAG 2.2 AA violation found by axe, at a desktop's width and at
    320 px; keep a full-page screenshot of each width named after ``label``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")
    original = page.viewport_size
    try:
        for width_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            found = violations(page)
            page.screenshot(path=str(artifacts_dir() / f"{name}-{width_name}.png"), full_page=True)
            assert found == [], f"axe on {label} at {size['width']} px:\n{describe(found)}"
            if width_name == "phone":
                overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 1, f"{label}: the page is {overflow} px wider than a 320 px screen"
    finally:
        if original:
            page.set_viewport_size(original)
