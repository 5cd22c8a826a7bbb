"""Feature loading: the binary path gives the numbers the text path gives, NULLs included."""

import datetime as dt

import pytest
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from customers.models import Purchase
from segments.ml import features
from tests.customers.factories import CustomerFactory
from tests.segments.ml.conftest import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyers():
    customers = CustomerFactory.create_batch(5)
    for i, customer in enumerate(customers):
        for j in range(i + 1):
            buy(customer, days_ago=3 + 40 * j + i, amount=f"{19.99 + 7.01 * i + j:.2f}")
    return customers


def test_purchase_aggregates_match_the_orm_value_for_value(buyers):
    reference = timezone.now()
    loaded = features.purchase_aggregates(reference=reference, window_days=365)

    assert list(loaded.columns) == list(features.AGGREGATE_COLUMNS)
    assert set(loaded.dtypes.astype(str)) == {"int64", "float64"}
    expected = (
        Purchase.objects.values("customer_id")
        .annotate(n=Count("id"), total=Sum("amount"), first=Min("purchased_at"))
        .annotate(last=Max("purchased_at"))
        .order_by("customer_id")
    )
    loaded = loaded.sort_values("customer_id", ignore_index=True)
    assert loaded["customer_id"].tolist() == [row["customer_id"] for row in expected]
    assert loaded["frequency"].tolist() == [1, 2, 3, 4, 5]
    assert loaded["monetary"].tolist() == pytest.approx([float(r["total"]) for r in expected])
    assert loaded["first_at"].tolist() == [int(r["first"].timestamp()) for r in expected]
    assert loaded["last_at"].tolist() == [int(r["last"].timestamp()) for r in expected]


def test_rfm_frame_counts_days_since_the_last_purchase(buyers):
    reference = timezone.now()
    frame = features.rfm_frame(reference=reference, window_days=365)

    assert frame["customer_id"].tolist() == sorted(c.pk for c in buyers)
    assert frame["recency"].tolist() == [3, 4, 5, 6, 7]
    assert frame["frequency"].tolist() == [1, 2, 3, 4, 5]


def test_an_empty_window_gives_an_empty_frame_with_the_columns(buyers):
    long_ago = timezone.now() - dt.timedelta(days=5000)
    loaded = features.purchase_aggregates(reference=long_ago, window_days=30)

    assert loaded.empty
    assert list(loaded.columns) == list(features.AGGREGATE_COLUMNS)


def test_null_values_come_back_as_missing_not_as_garbage(buyers):
    # A LEFT JOIN leaves customers without purchases in 5 days with NULL totals.
    reference = timezone.now()
    since = features._literal(reference - dt.timedelta(days=5))
    sql = (
        "SELECT c.id, sum(p.amount) FROM customers_customer c "
        f"LEFT JOIN customers_purchase p ON p.customer_id = c.id AND p.purchased_at >= {since} "
        "GROUP BY c.id"
    )
    loaded = features.numeric_frame_from_sql(sql, {"customer_id": "int64", "spend": "float64"})
    loaded = loaded.set_index("customer_id").sort_index()

    assert set(loaded.index) == {c.pk for c in buyers}
    spend = loaded["spend"]
    bought_lately = [buyers[0].pk, buyers[1].pk]  # 3 and 4 days ago
    assert spend[bought_lately].tolist() == pytest.approx([19.99, 27.00])
    assert spend.drop(bought_lately).isna().sum() == 3


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "row by row"])
def test_both_ways_from_postgresql_give_the_same_frame(buyers, monkeypatch, packed):
    if not packed:  # as for a database with more customers than one byte string can carry
        monkeypatch.setattr(
            features, "_customers_estimate", lambda: features.PACK_MAX_CUSTOMERS + 1
        )
    reference = timezone.now()

    loaded = features.purchase_aggregates(reference=reference, window_days=365)
    since = features._literal(reference - dt.timedelta(days=5))
    spend = features.numeric_frame_from_sql(
        "SELECT c.id, sum(p.amount) FROM customers_customer c LEFT JOIN customers_purchase p "
        f"ON p.customer_id = c.id AND p.purchased_at >= {since} GROUP BY c.id",
        {"customer_id": "int64", "spend": "float64"},
    ).set_index("customer_id")["spend"]

    loaded = loaded.sort_values("customer_id", ignore_index=True)
    assert loaded["customer_id"].tolist() == sorted(c.pk for c in buyers)
    assert loaded["frequency"].tolist() == [1, 2, 3, 4, 5]
    last = {
        c.pk: int(c.purchases.order_by("-purchased_at")[0].purchased_at.timestamp()) for c in buyers
    }
    assert loaded["last_at"].tolist() == [last[c] for c in loaded["customer_id"]]
    c_start = reference - dt.timedelta(days=365)
    total = {
        c.pk: float(sum(p.amount for p in c.purchases.filter(purchased_at__gte=c_start)))
        for c in buyers
    }
    assert loaded["monetary"].tolist() == pytest.approx([total[c] for c in loaded["customer_id"]])
    assert spend.isna().sum() == 3


def test_the_age_feature_is_in_whole_years_and_never_hints_at_the_birth_day():
    today = timezone.localdate()
    early = CustomerFactory(birth_date=today - dt.timedelta(days=41 * 365 + 300))
    late = CustomerFactory(birth_date=today - dt.timedelta(days=41 * 365 + 30))

    frame = features.customer_features(groups=["age"], reference=timezone.now(), window_days=365)

    assert frame.loc[early.pk, "age"] == frame.loc[late.pk, "age"] == 41.0


def test_one_time_buyers_are_flagged_not_given_the_whole_window_as_their_gap(buyers):
    one_time, repeat = buyers[0], buyers[1:]  # buyers[i] bought i + 1 times, 40 days apart

    frame = features.customer_features(
        groups=["purchase_interval"], reference=timezone.now(), window_days=730
    )

    assert frame.loc[one_time.pk, "one_time_buyer"] == 1.0
    assert all(frame.loc[c.pk, "one_time_buyer"] == 0.0 for c in repeat)
    assert frame.loc[one_time.pk, "purchase_interval"] == pytest.approx(40, abs=0.01)
    assert frame["purchase_interval"].max() < 41  # nobody's gap is the 730-day window


def test_tenure_counts_from_the_first_purchase_not_from_an_import(buyers):
    from customers.models import Customer

    Customer.objects.update(created_at=timezone.now() - dt.timedelta(days=1))  # one import day
    never_bought = CustomerFactory()

    frame = features.customer_features(groups=["tenure"], reference=timezone.now(), window_days=730)

    # buyers[4] first bought 3 + 40 * 4 + 4 = 167 days ago, buyers[0] 3 days ago.
    assert frame.loc[buyers[4].pk, "tenure"] == pytest.approx(167, abs=0.01)
    assert frame.loc[buyers[0].pk, "tenure"] == pytest.approx(3, abs=0.01)
    assert frame.loc[never_bought.pk, "tenure"] == 0.0


def test_a_cluster_of_one_time_buyers_is_named_for_that_and_not_for_long_gaps():
    from segments.ml.scoring import cluster_names

    profiles = [
        {
            "label": 0,
            "size": 600,
            "means": {"one_time_buyer": 0.97, "purchase_interval": 38.0, "frequency": 1.03},
            "overall": {"one_time_buyer": 0.6, "purchase_interval": 35.0, "frequency": 2.1},
            "z": {"one_time_buyer": 0.8, "purchase_interval": 0.9, "frequency": -0.7},
        }
    ]

    names, _descriptions = cluster_names(profiles)

    assert names[0].startswith("One-time buyers")
    assert "gaps" not in names[0]
