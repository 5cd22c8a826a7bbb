"""Real-browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Where /usr/bin/chromium is missing they are skipped, and the run says so loudly.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.audit import Auditor, write_index

CHROMIUM = os.environ.get("CRM_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
# Page and locator actions before which a page that navigated since its last check is checked.
ACTIONS = (
    "click", "dblclick", "tap", "fill", "type", "press", "press_sequentially", "check",
    "uncheck", "set_checked", "select_option", "set_input_files", "hover", "focus", "clear",
    "drag_to", "drag_and_drop", "bounding_box",
)  # fmt: skip
# Page methods before which the page left (if it navigated since its check) and after which
# the page reached is checked.
NAVIGATIONS = ("goto", "go_back", "go_forward", "reload")
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


_gallery: list[dict] = []


def pytest_sessionfinish(session):
    if _gallery:
        write_index(SCREENSHOTS, _gallery)


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
    # The first page of a run waits for the live server to warm up on a loaded machine.
    page.set_default_navigation_timeout(30000)
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


def role_of(page) -> str:
    """The role of the user signed in on the page's context: admin, sales, ..., or public."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user_model

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore

    cookie = next(
        (c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME), None
    )
    if cookie is None:
        return "public"
    user_id = SessionStore(session_key=cookie["value"]).get("_auth_user_id")
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    if user is None:
        return "public"
    if user.is_superuser:
        return "admin"
    return next(iter(sorted(user.groups.values_list("name", flat=True))), "staff")


@pytest.fixture(autouse=True)
def accessibility_check(request, monkeypatch):
    """axe-core on every page a browser test visits, and its screenshot (tests/e2e/audit.py)."""
    if "e2e" not in request.keywords:
        yield None
        return
    from playwright.sync_api import BrowserContext, Locator, Page

    auditor = Auditor(screenshots_dir=SCREENSHOTS, role_of=role_of, test_name=request.node.name)

    def before(cls, name, page_of):
        original = getattr(cls, name)

        def action(self, *args, **kwargs):
            auditor.check_if_pending(page_of(self))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, action)

    for name in ACTIONS:
        if hasattr(Page, name):
            before(Page, name, lambda page: page)
        if hasattr(Locator, name):
            before(Locator, name, lambda locator: locator.page)
    before(Page, "close", lambda page: page)

    for name in NAVIGATIONS:
        original = getattr(Page, name)

        def navigate(self, *args, _original=original, **kwargs):
            auditor.check_if_pending(self)  # the page being left, reached by a click
            response = _original(self, *args, **kwargs)
            if not auditor.busy:
                auditor.check(self)
            return response

        monkeypatch.setattr(Page, name, navigate)

    original_close = BrowserContext.close

    def close_context(self, *args, **kwargs):
        try:
            for page in self.pages:
                auditor.check_if_pending(page)
        finally:
            original_close(self, *args, **kwargs)

    monkeypatch.setattr(BrowserContext, "close", close_context)
    yield auditor
    try:
        auditor.finish()
    finally:
        _gallery.extend(auditor.seen)
