"""The signed links of a message: made once per batch, loaded by the views as before."""

from unittest import mock

import pytest
from django.core import signing
from django.urls import reverse

from campaigns.links import (
    BadLink,
    MessageLinks,
    click_target,
    open_send_id,
    unsubscribe_send_id,
)
from privacy.links import preference_token, preference_token_customer_id

SIGNED_AT = 1_790_000_000.0


@pytest.fixture
def links(settings) -> MessageLinks:
    settings.CAMPAIGNS_SITE_URL = "https://crm.example/"
    return MessageLinks()


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_links_are_the_tokens_signing_dumps_makes(links):
    with mock.patch("django.core.signing.time.time", return_value=SIGNED_AT):
        unsubscribe = _token(links.unsubscribe(42))
        opened = _token(links.open(42))
        clicked = _token(links.click(42, 'https://shop.example/sale?q=é&x="1"'))
        preferences = _token(links.preferences(7))
        expected = (
            signing.dumps(42, salt="campaigns.unsubscribe", compress=True),
            signing.dumps(42, salt="campaigns.open", compress=True),
            signing.dumps(
                {"s": 42, "u": 'https://shop.example/sale?q=é&x="1"'}, salt="campaigns.click"
            ),
            preference_token(customer_id=7),
        )

    assert (unsubscribe, opened, clicked, preferences) == expected


def test_each_link_leads_back_to_its_send(links):
    assert unsubscribe_send_id(_token(links.unsubscribe(42))) == 42
    assert open_send_id(_token(links.open(42))) == 42
    assert click_target(_token(links.click(42, "https://shop.example/a?b=1"))) == (
        42,
        "https://shop.example/a?b=1",
    )
    assert preference_token_customer_id(_token(links.preferences(7))) == 7


def test_links_in_messages_already_sent_still_load():
    long_url = "https://shop.example/sale/" + "summer-" * 20
    compressed = signing.dumps({"s": 9, "u": long_url}, salt="campaigns.click", compress=True)
    assert compressed.startswith(".")  # as links were signed before

    assert unsubscribe_send_id(signing.dumps(9, salt="campaigns.unsubscribe", compress=True)) == 9
    assert open_send_id(signing.dumps(9, salt="campaigns.open", compress=True)) == 9
    assert click_target(compressed) == (9, long_url)


def test_links_signed_before_a_key_rotation_still_load(settings):
    settings.SECRET_KEY = "the-old-key-" * 4
    token = _token(MessageLinks().unsubscribe(5))
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-key-" * 4, [settings.SECRET_KEY]

    assert unsubscribe_send_id(token) == 5


def test_a_link_signed_with_another_key_is_refused(settings):
    settings.SECRET_KEY = "someone-elses-key-" * 3
    token = _token(MessageLinks().open(5))
    settings.SECRET_KEY = "the-real-key-" * 4

    with pytest.raises(BadLink):
        open_send_id(token)


def test_links_point_at_the_site_and_the_pages_reverse_names(links):
    url = links.unsubscribe(42)
    token = _token(url)

    assert url == "https://crm.example" + reverse("campaigns:unsubscribe", args=[token])
    assert links.track('<p><a href="https://shop.example/x">x</a></p>', send_id=42).startswith(
        '<p><a href="https://crm.example/campaigns/t/c/'
    )
