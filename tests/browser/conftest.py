from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.browser.helpers import SHOTS
from tests.browser.world import world  # noqa: F401 (the module-scoped world fixture)
from tests.host.conftest import *  # noqa: F403  (real agents and Redis for browser tests too)
from tests.hosttools import missing

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        missing("Debian's chromium is not installed")
    # Playwright's sync API runs an event loop in this thread; the live server's ORM calls from
    # test code would otherwise be refused as "async unsafe".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test leaves a screenshot of every page it had open (var/test-logs/
    failed-<test>-<n>.png), and the report says which page showed what URL."""
    report = yield
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.failed and report.when in ("setup", "call") and browser is not None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", item.nodeid.split("/")[-1])[:120]
        SHOTS.mkdir(parents=True, exist_ok=True)
        shown = []
        pages = [p for context in browser.contexts for p in context.pages]
        for n, open_page in enumerate(pages):
            path = SHOTS / f"failed-{stem}-{n}.png"
            try:
                open_page.screenshot(path=str(path), full_page=True, timeout=10000)
                shown.append(f"{path} ({open_page.url})")
            except Exception as exc:  # a closed or hung page must not hide the test's own failure
                shown.append(f"no screenshot of {open_page.url}: {exc}")
        if shown:
            report.sections.append(("screenshots", "\n".join(shown)))
    return report
