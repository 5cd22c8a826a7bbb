import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client

from deals.models import Activity, Deal, StageChange
from tests.customers.factories import AccountFactory
from tests.deals.factories import activity_make, deal_make, stage_named

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam_client(sales_user):
    client = Client()
    client.force_login(sales_user)
    return client


def _names(html: str) -> list[str]:
    return re.findall(r'class="primary-cell"><a href="/deals/\d+/">([^<]+)</a>', html)


def test_the_list_shows_the_total_count_and_sorts_by_the_clicked_header(
    pipeline, sales_user, account_of_sam, sam_client
):
    for name, amount in (("Beta", 300), ("Alpha", 100), ("Gamma", 200)):
        deal_make(owner=sales_user, account=account_of_sam, name=name, amount=Decimal(amount))

    by_amount = sam_client.get("/deals/?sort=amount").content.decode()
    by_amount_down = sam_client.get("/deals/?sort=-amount").content.decode()

    assert 'data-testid="deal-count">3<' in by_amount
    assert _names(by_amount) == ["Alpha", "Gamma", "Beta"]
    assert _names(by_amount_down) == ["Beta", "Gamma", "Alpha"]
    assert 'href="?sort=-amount"' in by_amount  # clicking the sorted header again reverses it


def test_the_list_filters_by_stage_and_close_month(
    pipeline, sales_user, account_of_sam, sam_client
):
    deal_make(owner=sales_user, account=account_of_sam, name="April",
              expected_close_date=dt.date(2026, 4, 9))  # fmt: skip
    deal_make(owner=sales_user, account=account_of_sam, name="May",
              expected_close_date=dt.date(2026, 5, 9), stage=stage_named(pipeline, "Proposal"))  # fmt: skip

    in_april = sam_client.get("/deals/?close_month=2026-04").content.decode()
    in_proposal = sam_client.get(f"/deals/?stage={stage_named(pipeline, 'Proposal').pk}")

    assert _names(in_april) == ["April"]
    assert _names(in_proposal.content.decode()) == ["May"]


def test_a_salesperson_sees_only_their_own_deals(
    pipeline, sales_user, other_sales_user, account_of_sam
):
    deal = deal_make(owner=sales_user, account=account_of_sam, name="Mine")
    client = Client()
    client.force_login(other_sales_user)

    listing = client.get("/deals/").content.decode()
    board = client.get("/deals/board/").content.decode()

    assert "Mine" not in listing and "Mine" not in board
    assert client.get(f"/deals/{deal.pk}/").status_code == 404
    assert client.post(f"/deals/{deal.pk}/move/", {"stage": deal.stage_id}).status_code == 404


def test_sales_see_every_deal_when_the_setting_opens_them(
    pipeline, sales_user, other_sales_user, account_of_sam, settings
):
    settings.CRM_SALES_SEE_ALL = True
    deal = deal_make(owner=sales_user, account=account_of_sam, name="Mine")
    client = Client()
    client.force_login(other_sales_user)

    assert client.get(f"/deals/{deal.pk}/").status_code == 200


def test_marketing_reads_deals_but_cannot_open_the_form(pipeline, marketing_user, sales_user):
    deal_make(owner=sales_user, account=AccountFactory(owner=sales_user), name="Seen")
    client = Client()
    client.force_login(marketing_user)

    assert "Seen" in client.get("/deals/").content.decode()
    assert client.get("/deals/new/").status_code == 403


def test_privacy_officers_have_no_deal_pages(pipeline, privacy_user):
    client = Client()
    client.force_login(privacy_user)

    assert client.get("/deals/").status_code == 403
    assert client.get("/deals/board/").status_code == 403


def test_the_board_shows_columns_with_totals_and_weighted_totals(
    pipeline, sales_user, account_of_sam, sam_client
):
    deal_make(owner=sales_user, account=account_of_sam, amount=Decimal("1000.00"),
              stage=stage_named(pipeline, "Negotiation"))  # fmt: skip

    html = sam_client.get("/deals/board/").content.decode()

    column = html.split('data-testid="column-Negotiation"')[1].split("</header>")[0]
    assert "1,000.00" in column and "weighted 700.00" in column


def test_the_select_on_a_card_moves_the_deal_without_javascript(
    pipeline, sales_user, account_of_sam, sam_client
):
    deal = deal_make(owner=sales_user, account=account_of_sam)
    proposal = stage_named(pipeline, "Proposal")

    response = sam_client.post(
        f"/deals/{deal.pk}/move/", {"stage": proposal.pk, "next": "/deals/board/"}
    )

    assert response.status_code == 302 and response["Location"] == "/deals/board/"
    assert Deal.objects.get(pk=deal.pk).stage == proposal
    assert StageChange.objects.filter(deal=deal, to_stage=proposal, changed_by=sales_user).exists()


def test_a_drag_and_drop_move_needs_the_csrf_header(pipeline, sales_user, account_of_sam):
    deal = deal_make(owner=sales_user, account=account_of_sam)
    proposal = stage_named(pipeline, "Proposal")
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)
    client.get("/deals/board/")
    token = client.cookies["csrftoken"].value

    without = client.post(f"/deals/{deal.pk}/move/", {"stage": proposal.pk},
                          headers={"Accept": "application/json"})  # fmt: skip
    with_header = client.post(f"/deals/{deal.pk}/move/", {"stage": proposal.pk},
                              headers={"Accept": "application/json", "X-CSRFToken": token})  # fmt: skip

    assert without.status_code == 403
    assert with_header.status_code == 200 and with_header.json()["stage"] == proposal.pk


def test_a_move_to_a_stage_of_another_pipeline_is_a_clear_error_not_a_500(
    pipeline, sales_user, account_of_sam, sam_client
):
    from tests.deals.factories import pipeline_make

    other = pipeline_make("Renewals", is_default=False)
    deal = deal_make(owner=sales_user, account=account_of_sam)

    response = sam_client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stage_named(other, "Won").pk},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400 and "stage" in response.json()["errors"]


def test_a_deal_is_created_from_the_form_on_an_account(
    pipeline, sales_user, account_of_sam, sam_client
):
    form = sam_client.get(f"/deals/new/?account={account_of_sam.pk}").content.decode()
    response = sam_client.post(
        "/deals/new/",
        {
            "name": "Solar roof",
            "account": account_of_sam.pk,
            "stage": stage_named(pipeline, "Qualified").pk,
            "owner": sales_user.pk,
            "amount": "2500",
            "currency": "eur",
            "expected_close_date": "2026-06-30",
        },
    )

    assert f'<option value="{account_of_sam.pk}" selected>' in form
    deal = Deal.objects.get(name="Solar roof")
    assert response.status_code == 302 and response["Location"] == f"/deals/{deal.pk}/"
    assert (deal.owner, deal.currency, deal.amount) == (sales_user, "EUR", Decimal("2500"))


def test_the_deal_form_names_the_field_of_bad_input(pipeline, sam_client):
    response = sam_client.post("/deals/new/", {"name": "X", "amount": "-5", "currency": "E1"})

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_amount_error"' in html and 'id="id_currency_error"' in html
    assert 'id="id_account_error"' in html


def test_the_deal_page_shows_stage_changes_and_activities_on_its_timeline(
    pipeline, sales_user, account_of_sam, sam_client
):
    deal = deal_make(owner=sales_user, account=account_of_sam)
    sam_client.post(f"/deals/{deal.pk}/move/", {"stage": stage_named(pipeline, "Proposal").pk})
    activity_make(author=sales_user, deal=deal, subject="Walked through the quote")

    html = sam_client.get(f"/deals/{deal.pk}/").content.decode()

    timeline = html.split('data-testid="deal-timeline"')[1].split("</ul>")[0]
    assert "Moved from Qualified to Proposal" in timeline
    assert "Opened in Qualified" in timeline
    assert "Walked through the quote" in timeline


def test_a_follow_up_assigned_to_a_colleague_is_on_their_dashboard(
    pipeline, sales_user, other_sales_user, account_of_sam, sam_client
):
    deal = deal_make(owner=sales_user, account=account_of_sam)
    sam_client.post(
        "/deals/activities/new/",
        {"deal": deal.pk, "kind": "task", "subject": "Send the contract",
         "assignee": other_sales_user.pk, "due_date": dt.date.today().isoformat()},
    )  # fmt: skip
    colleague = Client()
    colleague.force_login(other_sales_user)

    dashboard = colleague.get("/").content.decode()

    card = dashboard.split('data-testid="dashboard-assigned-follow-ups"')[1].split("</ul>")[0]
    assert "Send the contract" in card
    activity = Activity.objects.get(subject="Send the contract")
    assert colleague.post(f"/deals/activities/{activity.pk}/done/").status_code == 302
    assert Activity.objects.get(pk=activity.pk).done


def test_the_customer_page_shows_the_customers_deals(
    pipeline, sales_user, customer_of_sam, sam_client
):
    deal_make(owner=sales_user, customer=customer_of_sam, name="Heat pump")

    html = sam_client.get(f"/customers/{customer_of_sam.pk}/").content.decode()

    assert "Heat pump" in html


def test_the_account_page_shows_the_accounts_deals(
    pipeline, sales_user, account_of_sam, sam_client
):
    deal_make(owner=sales_user, account=account_of_sam, name="Fleet renewal")

    html = sam_client.get(f"/customers/accounts/{account_of_sam.pk}/").content.decode()

    assert "Fleet renewal" in html and f"/deals/new/?account={account_of_sam.pk}" in html


def test_the_forecast_shows_weighted_pipeline_won_amounts_and_targets(
    pipeline, sales_user, account_of_sam, sam_client
):
    from deals.models import ForecastTarget
    from deals.services import deal_move

    close = dt.date.today() + dt.timedelta(days=1)
    deal_make(owner=sales_user, account=account_of_sam, amount=Decimal("1000"),
              expected_close_date=close, stage=stage_named(pipeline, "Proposal"))  # fmt: skip
    won = deal_make(owner=sales_user, account=account_of_sam, amount=Decimal("300"))
    deal_move(deal=won, stage=stage_named(pipeline, "Won"), actor=sales_user)
    ForecastTarget.objects.create(owner=sales_user, month=close.replace(day=1), amount=5000)

    html = sam_client.get(f"/deals/forecast/?start={close:%Y-%m}&months=3").content.decode()

    assert 'data-testid="forecast-weighted">€400.00<' in html
    assert "forecast-data" in html
    table = html.split('data-testid="forecast-table"')[1]
    assert "target €5,000.00" in table
