"""The check every browser test runs on every page (tests/e2e/audit.py): a serious violation
fails the test with its rule, page and nodes; each page checked is photographed."""

import pytest

from tests.e2e import audit

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MISSING_ALT = """() => {
  const img = document.createElement('img');
  img.id = 'unlabelled-picture';
  img.src = '/static/crm/favicon.svg';
  document.querySelector('main').append(img);
}"""


def test_a_serious_violation_fails_naming_the_rule_the_page_and_the_node(
    page, accessibility_check, monkeypatch
):
    monkeypatch.setattr(audit, "REPORT_ONLY", False)
    page.goto("/login/")  # checked on arrival: the sign-in page passes
    page.evaluate(MISSING_ALT)

    with pytest.raises(audit.AccessibilityViolation) as failure:
        accessibility_check.check(page)

    message = str(failure.value)
    assert "image-alt (critical)" in message
    assert f"on {page.url}" in message
    assert "#unlabelled-picture" in message
    page.evaluate("document.getElementById('unlabelled-picture').remove()")


def test_every_page_checked_is_in_the_gallery_under_its_role(page, accessibility_check):
    page.goto("/login/")

    shot = audit.page_name(page.url, 1366)
    assert (accessibility_check.screenshots_dir / "public" / f"{shot}.png").stat().st_size > 1000
    assert [e["file"] for e in accessibility_check.seen] == ["public/login.png"]


@pytest.mark.parametrize(
    "url,width,name",
    [
        ("http://x/customers/12/edit/?q=a", 1366, "customers-id-edit"),
        ("http://x/", 1366, "home"),
        ("http://x/privacy/p/" + "a" * 40 + "/", 390, "privacy-p-token-phone"),
    ],
)
def test_page_names_group_pages_of_a_kind(url, width, name):
    assert audit.page_name(url, width) == name
