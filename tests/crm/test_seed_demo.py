import datetime as dt
import io
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, F
from django.test import Client

from crm.demo.seeding import DEMO_PASSWORD, DEMO_USERS
from crm.roles import Role
from customers.contact_hashes import contact_hashes_refresh
from customers.models import Account, Customer, Event, Note, Purchase
from customers.services import customer_stats_refresh
from privacy.models import ConsentRecord, ConsentState, Purpose
from privacy.services import consent_states_rebuild
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 15)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(customers: int = 150, seed: int = 7, **options) -> str:
    out = io.StringIO()
    call_command(
        "seed_demo", customers=customers, seed=seed, today=DAY, verbosity=0, stdout=out, **options
    )
    return out.getvalue()


@pytest.fixture
def seeded_demo():
    seed()


def snapshot() -> dict[str, list]:
    """Everything the demo wrote, keyed by natural keys (database ids differ between runs)."""
    return {
        "customers": list(
            Customer.objects.order_by("external_id").values_list(
                "external_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "birth_date",
                "gender",
                "country",
                "region",
                "city",
                "postal_code",
                "language",
                "income_band",
                "attributes",
                "source",
                "owner__username",
                "account__name",
                "created_at",
                "lifetime_value",
                "purchase_count",
                "last_purchase_at",
            )
        ),
        "tags": list(
            Customer.tags.through.objects.order_by(
                "customer__external_id", "tag__name"
            ).values_list("customer__external_id", "tag__name")
        ),
        "purchases": list(
            Purchase.objects.order_by("external_id").values_list(
                "external_id",
                "customer__external_id",
                "purchased_at",
                "amount",
                "quantity",
                "channel",
                "product__sku",
                "category",
                "promotion_code",
            )
        ),
        "events": list(
            Event.objects.order_by("customer__external_id", "occurred_at", "type").values_list(
                "customer__external_id", "type", "occurred_at", "properties"
            )
        ),
        "notes": list(
            Note.objects.order_by("created_at", "body").values_list(
                "customer__external_id",
                "account__name",
                "author__username",
                "kind",
                "body",
                "due_date",
                "done",
            )
        ),
        "consents": list(
            ConsentRecord.objects.order_by(
                "customer__external_id", "purpose", "recorded_at"
            ).values_list("customer__external_id", "purpose", "state", "recorded_at", "source")
        ),
    }


def test_the_same_seed_gives_the_same_data():
    seed(seed=7)
    first = snapshot()

    seed(seed=7, replace=True)

    assert snapshot() == first
    assert len(first["customers"]) == 150
    assert all(first[kind] for kind in ("purchases", "events", "notes", "consents", "tags"))


def test_another_seed_gives_other_data():
    seed(seed=7)
    first = snapshot()

    seed(seed=8, replace=True)

    assert snapshot()["customers"] != first["customers"]


def test_if_empty_leaves_a_database_with_customers_alone():
    CustomerFactory(email="kept@example.com")

    output = seed(if_empty=True)

    assert list(Customer.objects.values_list("email", flat=True)) == ["kept@example.com"]
    assert "already holds 1 customers" in output


def test_if_empty_seeds_an_empty_database():
    seed(if_empty=True)

    assert Customer.objects.count() == 150


def test_seeding_over_existing_customers_without_a_flag_is_refused():
    CustomerFactory()

    with pytest.raises(CommandError, match="customers: the database already holds 1 customers"):
        seed()

    assert Customer.objects.count() == 1


def test_a_negative_number_of_customers_is_refused():
    with pytest.raises(CommandError, match="customers"):
        seed(customers=-5)


@pytest.mark.parametrize("username", list(DEMO_USERS))
def test_every_demo_user_signs_in_with_the_documented_password(seeded_demo, username):
    client = Client()

    assert client.login(username=username, password=DEMO_PASSWORD)


def test_each_demo_user_holds_the_role_the_readme_gives_it(seeded_demo):
    users = {u.username: u for u in get_user_model().objects.filter(username__in=DEMO_USERS)}

    assert users["admin"].is_superuser and users["admin"].is_staff
    for username, role in [
        ("sales", Role.SALES),
        ("sales2", Role.SALES),
        ("marketing", Role.MARKETING),
        ("privacy", Role.PRIVACY),
    ]:
        assert list(users[username].groups.values_list("name", flat=True)) == [role]
        assert not users[username].is_superuser


def test_the_two_salespeople_each_own_about_half_of_accounts_and_customers(seeded_demo):
    for model in (Account, Customer):
        owned = dict(model.objects.values_list("owner__username").annotate(n=Count("id")))
        total = model.objects.count()

        assert 0.35 * total <= owned["sales"] <= 0.65 * total
        assert 0.35 * total <= owned["sales2"] <= 0.65 * total


def test_customers_of_an_account_live_in_its_country(seeded_demo):
    mismatched = Customer.objects.filter(account__isnull=False).exclude(
        country=F("account__country")
    )

    assert not mismatched.exists()
    assert Customer.objects.filter(account__isnull=False).count() > 0.6 * Customer.objects.count()


def test_derived_figures_match_the_purchases(seeded_demo):
    purchases = defaultdict(list)
    for customer_id, amount, at in Purchase.objects.values_list(
        "customer_id", "amount", "purchased_at"
    ):
        purchases[customer_id].append((amount, at))

    for customer in Customer.objects.all():
        mine = purchases.get(customer.pk, [])
        total = sum((a for a, _ in mine), Decimal("0"))
        assert customer.purchase_count == len(mine)
        assert customer.lifetime_value == total
        if mine:
            average = (total / len(mine)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            assert abs(customer.average_order_value - average) <= Decimal("0.01")
            assert customer.first_purchase_at == min(at for _, at in mine)
            assert customer.last_purchase_at == max(at for _, at in mine)
        else:
            assert customer.last_purchase_at is None


def test_purchases_follow_a_long_tail_over_the_last_two_years(seeded_demo):
    counts = list(Customer.objects.values_list("purchase_count", flat=True))
    oldest = Purchase.objects.order_by("purchased_at").first().purchased_at

    assert sum(1 for n in counts if n <= 2) > len(counts) * 0.4
    assert max(counts) >= 10
    assert oldest.date() >= DAY - dt.timedelta(days=731)
    assert not Purchase.objects.filter(purchased_at__date__gte=DAY).exists()


def test_consent_states_follow_the_newest_ledger_record(seeded_demo):
    newest = {}
    for customer_id, purpose, state in ConsentRecord.objects.order_by(
        "recorded_at", "id"
    ).values_list("customer_id", "purpose_id", "state"):
        newest[(customer_id, purpose)] = state

    states = {
        (c, p): s
        for c, p, s in ConsentState.objects.values_list("customer_id", "purpose_id", "state")
    }

    assert states == newest
    assert ConsentRecord.objects.filter(purpose=Purpose.EMAIL_MARKETING, state="withdrawn").exists()


def test_about_two_thirds_of_customers_granted_email_marketing(seeded_demo):
    granted_ever = (
        ConsentRecord.objects.filter(purpose=Purpose.EMAIL_MARKETING, state="granted")
        .values("customer")
        .distinct()
        .count()
    )

    assert 0.5 * 150 <= granted_ever <= 0.8 * 150


def test_follow_ups_include_overdue_and_upcoming_ones(seeded_demo):
    open_follow_ups = Note.objects.filter(due_date__isnull=False, done=False)

    assert open_follow_ups.filter(due_date__lt=DAY).exists()
    assert open_follow_ups.filter(due_date__gte=DAY).exists()
    assert set(open_follow_ups.values_list("author__username", flat=True)) <= {"sales", "sales2"}


# The benchmark generator (bench/generator.py) writes with PostgreSQL COPY. Its tests run inside
# the test transaction like the others, so the roles and purposes the migrations made stay put.


def figures() -> list[tuple]:
    return list(
        Customer.objects.order_by("pk").values_list(
            "pk",
            "lifetime_value",
            "purchase_count",
            "first_purchase_at",
            "last_purchase_at",
            "average_order_value",
        )
    )


def consent_states() -> set[tuple]:
    return set(
        ConsentState.objects.values_list(
            "customer_id", "purpose_id", "state", "changed_at", "record_id"
        )
    )


def test_generated_benchmark_data_has_the_asked_size_and_consistent_figures():
    from bench.generator import dataset_generate

    dataset_generate(
        customers=300,
        purchases=4000,
        seed=5,
        reset=True,
        today=DAY,
        rebuild_indexes=True,
        log=lambda _: None,
    )

    assert Customer.objects.count() == 300
    assert Purchase.objects.count() == 4000
    generated = figures()
    customer_stats_refresh()
    assert figures() == generated
    assert Customer.objects.filter(purchase_count=0).exists()
    assert not Purchase.objects.filter(purchased_at__date__gte=DAY).exists()
    hashes = list(Customer.objects.order_by("pk").values_list("email_hash", "phone_hash"))
    contact_hashes_refresh(Customer.objects.all())  # what the database computes from the address
    assert list(Customer.objects.order_by("pk").values_list("email_hash", "phone_hash")) == hashes


def test_generated_consent_states_follow_the_ledger():
    from bench.generator import dataset_generate

    dataset_generate(
        customers=400, purchases=1000, seed=6, reset=True, today=DAY, log=lambda _: None
    )

    generated = consent_states()
    consent_states_rebuild()
    assert consent_states() == generated
    granted = ConsentState.objects.filter(purpose=Purpose.EMAIL_MARKETING, state="granted").count()
    assert 0.5 * 400 <= granted <= 0.8 * 400
    assert ConsentState.objects.filter(purpose=Purpose.EMAIL_MARKETING, state="withdrawn").exists()


def test_generated_benchmark_data_is_the_same_for_the_same_seed():
    from bench.generator import dataset_generate

    dataset_generate(
        customers=150, purchases=900, seed=9, reset=True, today=DAY, log=lambda _: None
    )
    first = snapshot()

    dataset_generate(
        customers=150, purchases=900, seed=9, reset=True, today=DAY, log=lambda _: None
    )

    assert snapshot() == first


def test_ensure_dataset_leaves_an_existing_dataset_of_the_same_size_and_seed_alone():
    from bench.generator import ensure_dataset

    ensure_dataset(120, 700, 4)
    Customer.objects.filter(pk=1).update(first_name="Untouched")

    ensure_dataset(120, 700, 4)

    assert Customer.objects.get(pk=1).first_name == "Untouched"
    assert Purchase.objects.count() == 700


def test_ensure_dataset_regenerates_for_another_size():
    from bench.generator import ensure_dataset

    ensure_dataset(120, 700, 4)

    ensure_dataset(80, 500, 4)

    assert (Customer.objects.count(), Purchase.objects.count()) == (80, 500)
    assert (
        Customer.objects.filter(email__isnull=False).exclude(email__endswith="@example.com").count()
        == 0
    )


def test_demo_segments_give_marketers_audiences_to_target(seeded_demo):
    from segments.compiler import compile_rule
    from segments.demo import DEMO_SEGMENTS
    from segments.models import Membership, Segment

    segments = Segment.objects.filter(slug__in=[slug for slug, *_ in DEMO_SEGMENTS])
    assert segments.count() == len(DEMO_SEGMENTS)
    high_value = segments.get(slug="demo-high-value")
    assert high_value.owner.username == "marketing"
    for segment in segments:
        members = set(
            Membership.objects.filter(segment=segment).values_list("customer_id", flat=True)
        )
        assert members == set(compile_rule(segment.rule).values_list("pk", flat=True)), segment.slug
        assert segment.member_count == len(members)
    assert high_value.member_count > 0


def test_seeding_again_with_replace_keeps_one_of_each_demo_segment(seeded_demo):
    from segments.models import Segment

    seed(replace=True)

    assert Segment.objects.filter(slug="demo-high-value").count() == 1
    assert Segment.objects.get(slug="demo-high-value").member_count > 0


def test_the_planner_knows_the_size_of_the_demo_data_once_seeded(seeded_demo):
    """Without statistics (autovacuum off, or not yet run) PostgreSQL plans the demo's tables as
    nearly empty, and a segment's live count took 12 s on 3,000 customers."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN "
            "('customers_customer', 'customers_purchase', 'privacy_consentstate')"
        )
        estimates = dict(cursor.fetchall())

    assert estimates == {
        "customers_customer": Customer.objects.count(),
        "customers_purchase": Purchase.objects.count(),
        "privacy_consentstate": ConsentState.objects.count(),
    }
