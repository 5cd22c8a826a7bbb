"""Every page is built from the design system (crm/static/crm/app.css, templates/crm/_*.html):
each table is a `table.data` inside a `.table-wrap`, each form control sits in the shared field
partial (crm/_field.html, marked data-ds-field) or a filter/search bar made of it, and every id
that aria-describedby names exists on the page.

The pages are those of tests/crm/test_page_fuzz.py (every URL pattern, filled with real
objects), read as a superuser, who sees every page."""

from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.crm.test_page_fuzz import PATTERNS, SKIPPED, _url, real_kwargs, world  # noqa: F401

CONTROLS = {"input", "select", "textarea"}
NOT_FIELDS = {"hidden", "submit", "button", "reset", "image"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


class DesignAudit(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.described_by: set[str] = set()

    def _inside(self, test) -> bool:
        return any(test(tag, attrs) for tag, attrs in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if attrs.get("type") != "hidden":  # a hidden input is never read out
            self.described_by.update(attrs.get("aria-describedby", "").split())
        if tag == "table":
            classes = attrs.get("class", "").split()
            if "data" not in classes:
                self.problems.append(f"<table class={attrs.get('class')!r}> is not table.data")
            if not self._inside(lambda t, a: "table-wrap" in a.get("class", "").split()):
                self.problems.append(f"<table id={attrs.get('id')!r}> is outside .table-wrap")
        if tag in CONTROLS and attrs.get("type", "text") not in NOT_FIELDS:
            if not self._inside(lambda t, a: "data-ds-field" in a or a.get("role") == "search"):
                self.problems.append(
                    f"<{tag} name={attrs.get('name')!r}> is not in the shared field partial"
                )
        if tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return


def audit(html: str) -> list[str]:
    parser = DesignAudit()
    parser.feed(html)
    missing = parser.described_by - parser.ids
    return parser.problems + [f"aria-describedby names a missing id {i!r}" for i in sorted(missing)]


@pytest.mark.django_db
def test_every_page_uses_the_design_systems_tables_and_fields(world):  # noqa: F811 (the fixture)
    client = Client()
    client.force_login(world["users"]["superuser"])
    found = {}
    for name, route in PATTERNS.items():
        if name in SKIPPED:
            continue
        for kwargs in real_kwargs(name, route, world):
            if "action" in kwargs:
                continue  # the campaign actions answer POST only
            url = _url(route, kwargs)
            response = client.get(url)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            problems = audit(response.content.decode())
            if problems:
                found[url] = sorted(set(problems))
    assert found == {}, "\n".join(f"{url}: {p}" for url, ps in found.items() for p in ps)


def test_the_audit_finds_a_browser_default_table_and_a_bare_field():
    html = (
        '<form><input name="q" aria-describedby="q_help"></form><table><tr><td>1</td></tr></table>'
    )

    assert audit(html) == [
        "<input name='q'> is not in the shared field partial",
        "<table class=None> is not table.data",
        "<table id=None> is outside .table-wrap",
        "aria-describedby names a missing id 'q_help'",
    ]
