import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from customers.models import Purchase
from deals.models import Deal, StageChange
from deals.selectors import board_columns, deals_visible_to, deals_with_figures
from deals.services import deal_create, deal_move, deal_update
from tests.customers.factories import AccountFactory
from tests.deals.factories import deal_make, pipeline_make, stage_named

pytestmark = pytest.mark.django_db


def test_every_stage_change_is_recorded_with_who_and_when(pipeline, sales_user, account_of_sam):
    deal = deal_create(actor=sales_user, name="Fleet", account=account_of_sam, amount=Decimal(500))

    deal_move(deal=deal, stage=stage_named(pipeline, "Proposal"), actor=sales_user)
    deal_move(deal=deal, stage=stage_named(pipeline, "Negotiation"), actor=sales_user)

    changes = list(StageChange.objects.filter(deal=deal).order_by("changed_at", "id"))
    assert [(c.from_stage and c.from_stage.name, c.to_stage.name) for c in changes] == [
        (None, "Qualified"),
        ("Qualified", "Proposal"),
        ("Proposal", "Negotiation"),
    ]
    assert {c.changed_by for c in changes} == {sales_user}


def test_a_stage_set_through_an_update_is_recorded_too(pipeline, sales_user, account_of_sam):
    deal = deal_make(owner=sales_user, account=account_of_sam)

    deal_update(deal=deal, actor=sales_user, stage=stage_named(pipeline, "Proposal"), name="X")

    assert StageChange.objects.filter(deal=deal, to_stage__name="Proposal").count() == 1


def test_probability_comes_from_the_stage_unless_the_deal_overrides_it(
    pipeline, sales_user, account_of_sam
):
    plain = deal_make(owner=sales_user, account=account_of_sam, amount=Decimal(1000))
    overridden = deal_make(
        owner=sales_user, account=account_of_sam, amount=Decimal(1000), probability=55
    )

    rows = {d.pk: d for d in deals_with_figures(deals_visible_to(sales_user))}

    assert (rows[plain.pk].effective_probability, rows[plain.pk].weighted_amount) == (10, 100)
    assert (rows[overridden.pk].effective_probability, rows[overridden.pk].weighted_amount) == (
        55,
        550,
    )


def test_a_won_deal_becomes_a_purchase_of_its_customer_once(pipeline, sales_user, customer_of_sam):
    deal = deal_make(owner=sales_user, customer=customer_of_sam, amount=Decimal("1200.00"))
    won = stage_named(pipeline, "Won")

    deal_move(deal=deal, stage=won, actor=sales_user)
    deal_move(deal=deal, stage=stage_named(pipeline, "Negotiation"), actor=sales_user)
    deal_move(deal=deal, stage=won, actor=sales_user)

    purchases = Purchase.objects.filter(customer=customer_of_sam)
    assert [p.amount for p in purchases] == [Decimal("1200.00")]
    customer_of_sam.refresh_from_db()
    assert customer_of_sam.lifetime_value == Decimal("1200.00")


def test_a_won_deal_whose_purchase_was_recorded_already_is_linked_not_counted_twice(
    pipeline, sales_user, customer_of_sam
):
    deal = deal_make(owner=sales_user, customer=customer_of_sam, amount=Decimal("1200.00"))
    won = stage_named(pipeline, "Won")
    deal_move(deal=deal, stage=won, actor=sales_user)
    recorded = Purchase.objects.get(customer=customer_of_sam)
    Deal.objects.filter(pk=deal.pk).update(purchase=None)  # the link lost, e.g. by a restore
    deal.refresh_from_db()

    deal_move(deal=deal, stage=stage_named(pipeline, "Negotiation"), actor=sales_user)
    deal_move(deal=deal, stage=won, actor=sales_user)

    assert list(Purchase.objects.filter(customer=customer_of_sam)) == [recorded]
    deal.refresh_from_db()
    assert deal.purchase == recorded


def test_a_pipeline_that_does_not_create_purchases_leaves_won_deals_as_deals(
    sales_user, customer_of_sam
):
    renewals = pipeline_make("Renewals", creates_purchases=False, is_default=False)
    deal = deal_make(owner=sales_user, customer=customer_of_sam, pipeline=renewals)

    deal_move(deal=deal, stage=stage_named(renewals, "Won"), actor=sales_user)

    assert not Purchase.objects.filter(customer=customer_of_sam).exists()


def test_a_salesperson_cannot_move_a_colleagues_deal(
    pipeline, sales_user, other_sales_user, account_of_sam
):
    deal = deal_make(owner=sales_user, account=account_of_sam)

    with pytest.raises(ValidationError) as refused:
        deal_move(deal=deal, stage=stage_named(pipeline, "Proposal"), actor=other_sales_user)

    assert "deal" in refused.value.error_dict
    assert StageChange.objects.filter(deal=deal).count() == 1


def test_a_salesperson_cannot_open_a_deal_on_an_account_they_do_not_see(
    pipeline, other_sales_user, account_of_sam
):
    with pytest.raises(ValidationError) as refused:
        deal_create(actor=other_sales_user, name="Poach", account=account_of_sam)

    assert "account" in refused.value.error_dict


def test_only_an_admin_gives_a_deal_to_someone_else(
    pipeline, sales_user, other_sales_user, account_of_sam
):
    with pytest.raises(ValidationError) as refused:
        deal_create(actor=sales_user, name="Gift", account=account_of_sam, owner=other_sales_user)

    assert "owner" in refused.value.error_dict


def test_marketing_cannot_write_deals(pipeline, marketing_user):
    with pytest.raises(PermissionDenied):
        deal_create(actor=marketing_user, name="Nope", account=AccountFactory())


def test_a_move_to_a_stage_of_another_pipeline_is_refused(pipeline, sales_user, account_of_sam):
    other = pipeline_make("Renewals", is_default=False)
    deal = deal_make(owner=sales_user, account=account_of_sam)

    with pytest.raises(ValidationError) as refused:
        deal_move(deal=deal, stage=stage_named(other, "Won"), actor=sales_user)

    assert "stage" in refused.value.error_dict


def test_board_columns_total_and_weight_every_deal_of_the_stage(
    pipeline, sales_user, account_of_sam
):
    for amount in (100, 300):
        deal_make(owner=sales_user, account=account_of_sam, amount=Decimal(amount))
    deal_make(
        owner=sales_user,
        account=account_of_sam,
        amount=Decimal(1000),
        stage=stage_named(pipeline, "Negotiation"),
        expected_close_date=dt.date(2030, 1, 1),
    )

    columns = {
        c.stage.name: c
        for c in board_columns(deals=deals_visible_to(sales_user), pipeline=pipeline)
    }

    assert (columns["Qualified"].count, columns["Qualified"].total) == (2, 400)
    assert columns["Qualified"].weighted == Decimal("40.00")
    assert columns["Negotiation"].weighted == Decimal("700.00")
    assert list(columns) == ["Qualified", "Proposal", "Negotiation", "Won", "Lost"]
