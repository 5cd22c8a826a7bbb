"""The preview at two widths and a test message to yourself: the variant written for a chosen
customer of the audience goes to the signed-in marketer's own address through the configured
email backend (here a real SMTP server on loopback), and is not a send of the campaign."""

import pytest

from campaigns.models import Send
from privacy.models import AuditEntry
from tests.campaigns.factories import members_add
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def member(segment):
    customer = CustomerFactory(first_name="Greta", last_name="Sample", email="greta@shop.test")
    members_add(segment, [customer])
    return customer


def _test_send(client, campaign, customer, **headers):
    variant = campaign.variants.get()
    return client.post(f"/campaigns/{campaign.pk}/preview/test/",
                       {"variant": variant.pk, "customer": customer.pk}, **headers)  # fmt: skip


def test_preview_offers_desktop_and_phone_widths_and_a_test_send(client, marketing_user, campaign,
                                                                  member):  # fmt: skip
    client.force_login(marketing_user)
    variant = campaign.variants.get()

    page = client.get(f"/campaigns/{campaign.pk}/preview/",
                      {"variant": variant.pk, "customer": member.pk}).content.decode()  # fmt: skip

    assert 'id="preview-width-desktop"' in page and "Desktop (640 px)" in page
    assert 'id="preview-width-mobile"' in page and "Phone (375 px)" in page
    assert 'sandbox=""' in page
    assert f'hx-post="/campaigns/{campaign.pk}/preview/test/"' in page
    assert "Send a test to me" in page and marketing_user.email in page


def test_marketer_gets_the_message_written_for_the_chosen_customer(client, marketing_user, campaign,
                                                                  member, smtp_server):  # fmt: skip
    client.force_login(marketing_user)

    response = _test_send(client, campaign, member, **HTMX)

    assert response.status_code == 200
    assert f"Test message sent to {marketing_user.email}" in response.content.decode()
    [(recipients, message)] = smtp_server.messages
    assert recipients == [marketing_user.email]
    assert message["Subject"] == "[Test] Hello Greta"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode()
             for part in message.walk() if not part.is_multipart()}  # fmt: skip
    assert "Hi Greta" in parts["text/plain"] and "<p>Hi Greta</p>" in parts["text/html"]


def test_a_test_message_is_not_a_send_of_the_campaign_but_is_audited(client, marketing_user,
                                                                     campaign, member, smtp_server):  # fmt: skip
    client.force_login(marketing_user)

    _test_send(client, campaign, member, **HTMX)

    assert not Send.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.launched_at is None
    entry = AuditEntry.objects.get(object_kind="customer", object_id=member.pk)
    assert (entry.action, entry.actor, entry.details["campaign"]) == ("export", marketing_user,
                                                                      campaign.pk)  # fmt: skip


def test_without_htmx_the_marketer_returns_to_the_message_step(client, marketing_user, campaign,
                                                              member, smtp_server):  # fmt: skip
    client.force_login(marketing_user)

    response = _test_send(client, campaign, member, follow=True)

    assert response.redirect_chain[-1][0] == f"/campaigns/{campaign.pk}/edit/message/"
    assert f"Test message sent to {marketing_user.email}." in response.content.decode()
    assert len(smtp_server.messages) == 1


def test_no_test_message_for_a_customer_outside_the_audience(client, marketing_user, campaign,
                                                            smtp_server):  # fmt: skip
    outsider = CustomerFactory(first_name="Otto")
    client.force_login(marketing_user)

    response = _test_send(client, campaign, outsider, **HTMX)

    assert response.status_code == 404
    assert "not in the campaign&#x27;s audience" in response.content.decode()
    assert smtp_server.messages == []


def test_an_account_without_an_email_address_is_told_so(client, make_user, campaign, member,
                                                        smtp_server):  # fmt: skip
    marketer = make_user("no.mail", "marketing")
    marketer.email = ""
    marketer.save(update_fields=["email"])
    client.force_login(marketer)

    response = _test_send(client, campaign, member, **HTMX)

    assert response.status_code == 400
    assert "email: your account has no email address" in response.content.decode()
    assert smtp_server.messages == []


def test_a_refusing_mail_server_is_a_clear_error_not_a_server_error(client, marketing_user,
                                                                    campaign, member, smtp_server):  # fmt: skip
    smtp_server.refusing.add(marketing_user.email)
    client.force_login(marketing_user)

    response = _test_send(client, campaign, member, **HTMX)

    assert response.status_code == 400
    assert "the mail server did not take the test message" in response.content.decode()
    assert not AuditEntry.objects.filter(object_id=member.pk, action="export").exists()


def test_sales_staff_cannot_send_test_messages(client, sales_user, campaign, member, smtp_server):
    client.force_login(sales_user)

    response = _test_send(client, campaign, member, **HTMX)

    assert response.status_code == 403
    assert smtp_server.messages == []


def test_the_api_sends_a_test_to_the_signed_in_user(marketing_user, campaign, member, smtp_server):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(marketing_user)

    response = api.post(f"/api/campaigns/{campaign.pk}/test-send/", {"customer": member.pk},
                        format="json")  # fmt: skip

    assert response.status_code == 200 and response.json() == {"sent_to": marketing_user.email}
    assert [m["Subject"] for _to, m in smtp_server.messages] == ["[Test] Hello Greta"]
    assert not Send.objects.exists()
