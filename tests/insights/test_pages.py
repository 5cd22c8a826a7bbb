"""The insight pages and API as a marketer meets them."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from insights.cohorts import cohort_table
from insights.models import KpiSnapshot
from tests.campaigns.factories import members_add
from tests.customers.factories import CustomerFactory
from tests.insights.factories import purchase
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def segments():
    """Two segments: big spenders (two buyers) and a small one (one buyer)."""
    big, small = StaticSegmentFactory(name="Big spenders"), StaticSegmentFactory(name="Small")
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory(first_name="=cmd|x")
    members_add(big, [a, b])
    members_add(small, [c])
    yesterday = timezone.now() - dt.timedelta(days=1)
    for customer, amount in ((a, "300.00"), (b, "100.00"), (c, "=50")):
        purchase(customer, yesterday, "50.00" if amount == "=50" else amount)
    return big, small


def test_a_marketer_reads_a_segments_kpis_against_the_rest(client, marketing_user, segments):
    big, _small = segments
    client.force_login(marketing_user)

    page = client.get(f"/insights/?segment={big.pk}&days=30")

    assert page.status_code == 200
    html = page.content.decode()
    assert "KPIs: Big spenders" in html
    assert 'data-metric="revenue"' in html and "400.00" in html  # the segment's revenue
    assert 'id="kpi-months"' in html  # the charts' data, as JSON
    assert KpiSnapshot.objects.filter(segment=big, days=30).count() == 1


def test_the_kpi_csv_keeps_every_cell_as_text(client, marketing_user, segments):
    big, _small = segments
    client.force_login(marketing_user)

    response = client.get(f"/insights/kpis.csv?segment={big.pk}&days=30")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["metric", "population", "period", "value"]
    revenue = [r for r in rows if r[0] == "Revenue" and r[1] == "segment"][0]
    assert revenue[3] == "400.0"
    change = [r for r in rows if r[0] == "Churn" and r[1] == "all"][0]
    assert not change[5].startswith("-")  # a negative change would run as a formula


def test_a_bad_period_is_a_form_error_naming_the_field(client, marketing_user):
    client.force_login(marketing_user)

    page = client.get("/insights/?days=31&end=2999-01-01")

    assert page.status_code == 200
    assert "has-error" in page.content.decode()
    assert client.get("/insights/kpis.csv?days=x").status_code == 400


def test_sales_staff_do_not_see_the_insights(client, sales_user):
    client.force_login(sales_user)

    assert client.get("/insights/").status_code == 403
    assert client.get("/insights/cohorts/").status_code == 403


def test_comparing_segments_says_whether_a_difference_is_beyond_noise(
    client, marketing_user, segments
):
    big, small = segments
    client.force_login(marketing_user)

    page = client.get(f"/insights/compare/?segments={big.pk}&segments={small.pk}&days=30")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Big spenders" in html and "baseline" in html
    assert 'data-noise="within"' in html  # one customer against two: nothing is beyond noise


def test_the_api_gives_the_same_figures_and_refuses_bad_input_by_field(
    api_client_for, marketing_user, segments
):
    big, small = segments
    api = api_client_for(marketing_user)

    kpis = api.get(f"/api/insights/kpis/?segment={big.pk}&days=30").json()
    revenue = next(m for m in kpis["metrics"] if m["key"] == "revenue")
    assert revenue["segment"]["current"]["value"] == 400.0
    assert revenue["outside"]["current"]["value"] == 50.0

    bad = api.get("/api/insights/kpis/?days=8")
    assert bad.status_code == 400 and "days" in bad.content.decode()
    compared = api.get(f"/api/insights/compare/?segments={big.pk},{small.pk}")
    assert compared.status_code == 200
    assert api.get("/api/insights/compare/?segments=1").status_code == 400
    assert api.get("/api/insights/cohorts/?months=7").status_code == 400
    queued = api.post("/api/insights/kpis/refresh/", {"segment": big.pk, "days": 30}, format="json")
    assert queued.status_code == 202


def test_cohorts_show_the_share_still_buying_each_month():
    today = dt.date(2025, 6, 15)
    early, late, lapsed = CustomerFactory(country="FR"), CustomerFactory(), CustomerFactory()
    at = lambda y, m: timezone.make_aware(dt.datetime(y, m, 10, 12))  # noqa: E731
    for customer, months in ((early, [(2025, 4), (2025, 5), (2025, 6)]), (lapsed, [(2025, 4)]),
                             (late, [(2025, 5)])):  # fmt: skip
        for y, m in months:
            purchase(customer, at(y, m), "10.00")
        customer.first_purchase_at = at(*months[0])
        customer.save(update_fields=["first_purchase_at"])

    table = cohort_table(months=3, today=today)

    april, may, june = table["rows"]
    assert (april["cohort"], april["size"]) == ("2025-04", 2)
    assert [c["share"] for c in april["cells"]] == [1.0, 0.5, 0.5]
    assert [c["heat"] for c in april["cells"]] == ["heat-10", "heat-5", "heat-5"]
    assert april["revenue"] == 40.0
    assert [c["share"] for c in may["cells"]] == [1.0, 0.0]
    assert june["size"] == 0 and june["cells"][0]["share"] is None
    assert cohort_table(months=3, today=today, country="fr")["rows"][0]["size"] == 1
    assert cohort_table(months=3, today=today, channel="store")["rows"][0]["size"] == 0


def test_the_cohort_page_colours_cells_by_class(client, marketing_user):
    client.force_login(marketing_user)
    customer = CustomerFactory()
    purchase(customer, timezone.now(), "10.00")
    customer.first_purchase_at = timezone.now()
    customer.save(update_fields=["first_purchase_at"])

    page = client.get("/insights/cohorts/?months=6")

    html = page.content.decode()
    assert 'class="heat-10"' in html
    assert "style=" not in html.split('id="cohort-heatmap"')[1]
