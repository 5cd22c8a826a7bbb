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


# Links in messages sent before the links were signed with django.core.signing's own API (made
# by the earlier MessageLinks, which re-derived Django's signing key itself).
OLD_SECRET_KEY = "campaign-links-made-before-django-signing"
OLD_UNSUBSCRIBE = "NDI0Mg:1xagAn:pgQ4MSmOMi8uG2SVqvShb_Xzlk215KL7j_bP0gjVRjQ"
OLD_OPEN = "NDI0Mg:1xagAn:JItMFThBKms6GTZMcAqSOLb-RdrFG_2OJGIjkrXGTw4"
OLD_CLICK = (
    "eyJzIjo0MjQyLCJ1IjoiaHR0cHM6Ly9zaG9wLmV4YW1wbGUvc2FsZT9hPTEmYj0yIn0:1xagAn:"
    "AtxM3RUr6cGZai6ziL9UrH0UdH5PAKCNoF6B2_fCw7w"
)
OLD_PREFERENCES = "eyJjIjo3N30:1xagAn:D2eve5-UDDGD0Kg9zOTYFj9CnU1XXb8dp1O7f9Y12to"


def test_links_in_messages_sent_by_the_earlier_signer_keep_working(settings):
    settings.SECRET_KEY = OLD_SECRET_KEY
    a_month_later = signing.b62_decode("1xagAn") + 30 * 24 * 3600

    with mock.patch("django.core.signing.time.time", return_value=float(a_month_later)):
        assert unsubscribe_send_id(OLD_UNSUBSCRIBE) == 4242
        assert open_send_id(OLD_OPEN) == 4242
        assert click_target(OLD_CLICK) == (4242, "https://shop.example/sale?a=1&b=2")
        assert preference_token_customer_id(OLD_PREFERENCES) == 77
    # ... and links made now, at the same moment, are the same tokens.
    settings.CAMPAIGNS_SITE_URL = "http://testserver"
    made_at = float(signing.b62_decode("1xagAn"))
    with mock.patch("django.core.signing.time.time", return_value=made_at):
        links = MessageLinks()
        assert _token(links.unsubscribe(4242)) == OLD_UNSUBSCRIBE
        assert _token(links.click(4242, "https://shop.example/sale?a=1&b=2")) == OLD_CLICK


def test_old_links_keep_working_after_the_key_is_rotated(settings):
    settings.SECRET_KEY = "a-new-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = [OLD_SECRET_KEY]

    assert open_send_id(OLD_OPEN) == 4242
    assert click_target(OLD_CLICK)[0] == 4242
    with pytest.raises(BadLink):
        settings.SECRET_KEY_FALLBACKS = []
        open_send_id(OLD_OPEN)
