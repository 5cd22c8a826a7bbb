"""Promotions: a unique, unguessable code per recipient or one shared code, expiry and a
redemption cap; purchases posted or imported with a code are redemptions in the report."""

import datetime as dt
import io
import math
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.models import Campaign, PromotionCode, Send
from campaigns.results import campaign_report
from campaigns.services import CODE_ALPHABET, promotion_set
from customers.importing import purchases_import
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_unique_codes(campaign, marketing_user):
    promotion_set(campaign=campaign, actor=marketing_user, discount="percent", value=Decimal("20"))
    return campaign


@pytest.fixture
def with_shared_code(campaign, marketing_user):
    promotion_set(campaign=campaign, actor=marketing_user, discount="amount", value=Decimal("10"),
                  code_mode="shared", shared_code="spring10")  # fmt: skip
    return campaign


def _codes(campaign) -> dict[int, str]:
    return dict(
        PromotionCode.objects.filter(promotion__campaign=campaign).values_list(
            "customer_id", "code"
        )
    )


def _buy(customer, code: str, *, hours: float = 1, amount: str = "50.00"):
    return PurchaseFactory(customer=customer, amount=Decimal(amount), promotion_code=code,
                           purchased_at=timezone.now() + dt.timedelta(hours=hours))  # fmt: skip


def test_every_recipient_gets_a_code_of_their_own_in_the_message(
    with_unique_codes, consenting_members, launch
):
    launch(with_unique_codes)

    codes = _codes(with_unique_codes)
    assert sorted(codes) == sorted(c.pk for c in consenting_members)
    assert len(set(codes.values())) == len(codes)
    by_email = {c.email: codes[c.pk] for c in consenting_members}
    for message in mail.outbox:
        assert f"your code is {by_email[message.to[0]]}." in message.body


def test_codes_are_long_random_strings_nobody_can_derive_from_another(
    segment, marketing_user, launch
):
    customers = CustomerFactory.create_batch(300)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign)
    promotion_set(campaign=campaign, actor=marketing_user, discount="percent", value=Decimal("5"))

    launch(campaign)

    codes = list(_codes(campaign).values())
    assert len(set(codes)) == 300
    alphabet = set("".join(codes))
    assert alphabet <= set(CODE_ALPHABET) | set("0123456789ABCDEF")
    # At least 2^48 possibilities per code, and no shared prefix that would hint at a sequence.
    assert min(len(c) for c in codes) * math.log2(len(alphabet)) >= 48
    assert len({c[:4] for c in codes}) > 250


def test_holdout_and_excluded_customers_get_no_code(segment, marketing_user, launch):
    customers = CustomerFactory.create_batch(60)
    members_add(segment, customers)
    consent_grant_all(customers[:50])
    campaign = CampaignFactory(holdout_percent=Decimal("30"))
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign)
    promotion_set(campaign=campaign, actor=marketing_user, discount="percent", value=Decimal("5"))

    launch(campaign)

    sent = set(
        Send.objects.filter(campaign=campaign, status=Send.Status.SENT).values_list(
            "customer_id", flat=True
        )
    )
    assert set(_codes(campaign)) == sent


def test_shared_code_goes_to_everyone(with_shared_code, consenting_members, launch):
    launch(with_shared_code)

    assert {m.body.rsplit(" ", 1)[1] for m in mail.outbox} == {"SPRING10."}
    assert _codes(with_shared_code) == {}


def test_purchase_posted_through_the_api_with_the_code_is_a_redemption(
    with_unique_codes,
    consenting_members,
    launch,
    sales_user,
    api_client_for,
    client,
    marketing_user,
):
    launch(with_unique_codes)
    buyer = consenting_members[2]
    buyer.owner = sales_user
    buyer.save(update_fields=["owner"])
    code = _codes(with_unique_codes)[buyer.pk]

    response = api_client_for(sales_user).post(
        "/api/purchases/",
        {
            "customer": buyer.pk,
            "purchased_at": (timezone.now() + dt.timedelta(days=30)).isoformat(),
            "amount": "80.00",
            "currency": "EUR",
            "promotion_code": code,
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 201, response.json()
    report = campaign_report(campaign=with_unique_codes)
    assert report["promotion_redemptions"] == 1
    # Thirty days is past the 7-day window: the code alone attributes the purchase.
    assert (report["totals"]["converted"], report["totals"]["revenue"]) == (1, 80.0)
    client.force_login(marketing_user)
    page = client.get(f"/campaigns/{with_unique_codes.pk}/report/").content.decode()
    assert "Promotion redemptions: 1" in page


def test_imported_purchase_with_the_shared_code_is_a_redemption(
    with_shared_code, consenting_members, launch
):
    launch(with_shared_code)
    buyer = consenting_members[0]
    when = (timezone.now() + dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    csv = (
        f"customer_email,purchased_at,amount,promotion_code\n{buyer.email},{when},42.50,Spring10\n"
    )

    result = purchases_import(stream=io.BytesIO(csv.encode()))

    assert result.failed == 0
    report = campaign_report(campaign=with_shared_code)
    assert report["promotion_redemptions"] == 1
    assert report["totals"]["revenue"] == 42.5


def test_purchase_after_the_expiry_is_no_redemption(with_shared_code, consenting_members, launch):
    promotion = with_shared_code.promotion
    promotion.expires_at = timezone.now() + dt.timedelta(days=10)
    promotion.save()
    launch(with_shared_code)

    _buy(consenting_members[0], "SPRING10", hours=24 * 9)
    _buy(consenting_members[1], "SPRING10", hours=24 * 11)

    assert campaign_report(campaign=with_shared_code)["promotion_redemptions"] == 1


def test_redemptions_stop_at_the_cap(with_shared_code, consenting_members, launch):
    promotion = with_shared_code.promotion
    promotion.redemption_cap = 2
    promotion.save()
    launch(with_shared_code)

    for customer in consenting_members[:4]:
        _buy(customer, "SPRING10")

    report = campaign_report(campaign=with_shared_code)
    assert (report["promotion_redemptions"], report["redemption_cap"]) == (2, 2)


def test_a_unique_code_is_redeemed_once(with_unique_codes, consenting_members, launch):
    launch(with_unique_codes)
    buyer = consenting_members[0]
    code = _codes(with_unique_codes)[buyer.pk]

    _buy(buyer, code, hours=1)
    _buy(buyer, code, hours=2)

    assert campaign_report(campaign=with_unique_codes)["promotion_redemptions"] == 1


def test_code_used_before_the_launch_is_no_redemption(with_shared_code, consenting_members, launch):
    _buy(consenting_members[0], "SPRING10", hours=-48)

    launch(with_shared_code)

    assert campaign_report(campaign=with_shared_code)["promotion_redemptions"] == 0
    assert Campaign.objects.get(pk=with_shared_code.pk).status == Campaign.Status.SENT


def test_promotion_api_refuses_bad_values_naming_the_field(
    campaign, api_client_for, marketing_user
):
    api = api_client_for(marketing_user)

    percent = api.put(f"/api/campaigns/{campaign.pk}/promotion/",
                      {"discount": "percent", "value": "150"}, format="json")  # fmt: skip
    shared = api.put(f"/api/campaigns/{campaign.pk}/promotion/",
                     {"discount": "amount", "value": "5", "code_mode": "shared"}, format="json")  # fmt: skip

    assert percent.status_code == 400 and "value" in percent.json()
    assert shared.status_code == 400 and "shared_code" in shared.json()


def _status(api, code: str) -> dict:
    response = api.get(f"/api/campaigns/promotion-codes/{code}/")
    assert response.status_code == 200
    return response.json()


def test_till_checks_a_personal_code_before_and_after_it_is_used(
    with_unique_codes, consenting_members, launch, api_client_for, sales_user
):
    launch(with_unique_codes)
    buyer = consenting_members[0]
    code = _codes(with_unique_codes)[buyer.pk]
    till = api_client_for(sales_user)

    before = _status(till, f" {code.lower()} ")
    _buy(buyer, code)
    after = _status(till, code)

    assert (before["valid"], before["discount_display"], before["customer"]) == (
        True,
        "20%",
        buyer.pk,
    )
    assert (after["valid"], after["reason"]) == (False, "used")


def test_expired_exhausted_and_unknown_codes_are_refused_with_the_reason(
    with_shared_code, consenting_members, launch, api_client_for, marketing_user
):
    promotion = with_shared_code.promotion
    promotion.redemption_cap = 1
    promotion.save()
    launch(with_shared_code)
    api = api_client_for(marketing_user)
    fresh = _status(api, "spring10")
    _buy(consenting_members[0], "SPRING10")

    exhausted = _status(api, "SPRING10")
    promotion.expires_at = timezone.now() - dt.timedelta(minutes=1)
    promotion.save()
    expired = _status(api, "SPRING10")
    unknown = _status(api, "NOSUCHCODE")

    assert fresh["valid"] is True and fresh["redemptions"] == 0
    assert (exhausted["valid"], exhausted["reason"], exhausted["redemptions"]) == (
        False,
        "exhausted",
        1,
    )
    assert (expired["valid"], expired["reason"]) == (False, "expired")
    assert (unknown["valid"], unknown["reason"]) == (False, "unknown")


def test_code_of_a_campaign_not_sent_yet_is_not_valid(
    with_shared_code, api_client_for, marketing_user
):
    status = _status(api_client_for(marketing_user), "SPRING10")

    assert (status["valid"], status["reason"]) == (False, "not_sent")


def test_code_check_page_for_sales_staff(
    with_shared_code, consenting_members, launch, client, sales_user, privacy_user
):
    launch(with_shared_code)
    client.force_login(sales_user)

    page = client.get("/campaigns/promotion-code/", {"code": "spring10"}).content.decode()
    empty = client.get("/campaigns/promotion-code/", {"code": ""})
    client.force_login(privacy_user)
    refused = client.get("/campaigns/promotion-code/", {"code": "spring10"})

    assert 'id="code-verdict">valid<' in page and "10.00" in page
    assert empty.status_code == 200 and "This field is required" in empty.content.decode()
    assert refused.status_code == 403
