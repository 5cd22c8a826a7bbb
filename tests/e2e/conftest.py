"""Real-browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Where /usr/bin/chromium is missing they are skipped, and the run says so loudly.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CRM_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_REASON = (
    f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM}. Install it (apt-get install chromium) "
    "to run the end-to-end journey; CI installs it."
)


def _chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def pytest_collection_modifyitems(config, items):
    e2e = [item for item in items if "e2e" in item.keywords]
    if e2e and not _chromium_available():
        banner = "!" * 100
        print(f"\n{banner}\n!!! {SKIP_REASON}\n{banner}")
        for item in e2e:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def pytest_terminal_summary(terminalreporter):
    if not _chromium_available() and terminalreporter.stats.get("skipped"):
        terminalreporter.write_sep("!", SKIP_REASON, red=True, bold=True)


@pytest.fixture(scope="session")
def _async_unsafe_allowed():
    # Playwright's sync API runs an event loop in this thread; Django's ORM would refuse to run
    # next to it. The live server runs in its own thread, so this only affects test set-up code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(_async_unsafe_allowed):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.console_messages = []
    page.on("console", lambda msg: page.console_messages.append(f"{msg.type}: {msg.text}"))
    yield page
    context.close()


@pytest.fixture
def screenshot(page, request):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str, *, target=None) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    return take
