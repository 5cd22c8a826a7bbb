"""A purchase without an order number is the n-th identical line of its customer: identical lines
are purchases of their own, a file imported again adds nothing, and the figures of every customer
a file names are right after an import a lost worker left half done (docs/import.md)."""

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from customers.importing import purchase_dedup_key, purchases_import
from customers.models import Customer, FiguresCheck, Purchase
from customers.tasks import customer_figures_check_task
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

# Two of the same item bought on the same day in two orders, by C1; once by C2.
TRANSACTIONS = (
    "customer_external_id,purchased_at,amount,product_sku\n"
    "C1,2024-05-01,19.90,MUG\n"
    "C1,2024-05-01,19.90,MUG\n"
    "C2,2024-05-01,19.90,MUG\n"
    "C1,2024-05-02,5.00,PEN\n"
    "C1,2024-05-01,19.90,MUG\n"
)
FILE_TOTAL = Decimal("84.60")


@pytest.fixture
def buyers():
    return CustomerFactory(external_id="C1"), CustomerFactory(external_id="C2")


def run(text: str = TRANSACTIONS, **options):
    return purchases_import(stream=io.BytesIO(text.encode()), **options)


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_identical_lines_are_purchases_of_their_own_and_a_second_import_adds_nothing(
    buyers, batch_size
):
    first = run(batch_size=batch_size)
    second = run(batch_size=batch_size)

    assert first.counts() == {"read": 5, "created": 5, "updated": 0, "unchanged": 0, "failed": 0}
    assert sum(Purchase.objects.values_list("amount", flat=True)) == FILE_TOTAL
    assert second.counts() == {"read": 5, "created": 0, "updated": 0, "unchanged": 5, "failed": 0}
    assert Purchase.objects.count() == 5
    ann = Customer.objects.get(external_id="C1")
    assert (ann.purchase_count, ann.lifetime_value) == (4, Decimal("64.70"))


def test_the_report_points_identical_lines_out_as_a_notice(buyers):
    result = run()

    assert result.failed == 0 and result.identical_lines == 2
    [notice] = result.notices()
    assert "line 3, 6" in notice and "purchase of its own" in notice


def test_a_file_imported_before_keeps_matching_and_gets_its_refused_lines_back(buyers):
    # Before: the first MUG line of C1 was stored under the key imports have always given, the
    # identical ones were refused as duplicates.
    ann = buyers[0]
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    old_key = purchase_dedup_key(
        customer_id=ann.pk, purchased_at=moment, amount=Decimal("19.90"), product_id=None
    )
    Purchase.objects.create(
        customer=ann, purchased_at=moment, amount=Decimal("19.90"), dedup_key=old_key
    )

    result = run(
        "customer_external_id,purchased_at,amount\nC1,2024-05-01,19.90\nC1,2024-05-01,19.90\n"
    )

    assert (result.created, result.unchanged) == (1, 1)
    keys = set(Purchase.objects.values_list("dedup_key", flat=True))
    assert keys == {old_key, f"{old_key}:2"}


def test_strict_duplicates_keeps_refusing_identical_lines(buyers):
    result = run(strict_duplicates=True)

    assert [(e.line, e.reason) for e in result.errors] == [
        (3, "duplicate within the file: line 2 has the same purchase"),
        (6, "duplicate within the file: line 2 has the same purchase"),
    ]
    assert Purchase.objects.count() == 3


def test_the_command_imports_identical_lines_with_a_notice_or_refuses_them_when_strict(
    buyers, tmp_path, capsys
):
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS)

    with pytest.raises(CommandError):
        call_command("import_purchases", str(path), "--strict-duplicates", "--no-progress")
    assert Purchase.objects.count() == 3
    call_command("import_purchases", str(path), "--no-progress")

    assert Purchase.objects.count() == 5
    assert "Notice: 2 purchase lines" in capsys.readouterr().out


def test_the_import_page_offers_strict_duplicates(client, superuser):
    client.force_login(superuser)

    page = client.get("/customers/import/").content.decode()

    assert 'name="strict_duplicates"' in page


# --- Derived figures --------------------------------------------------------------------------


def test_a_retried_import_refreshes_the_figures_of_every_customer_its_file_names(buyers):
    ann, bob = buyers
    run()
    # A worker lost midway: its chunks committed, the figures were never refreshed.
    Customer.objects.filter(pk=ann.pk).update(lifetime_value=0, purchase_count=0)

    retry = run()

    assert retry.created == 0
    ann.refresh_from_db()
    assert (ann.purchase_count, ann.lifetime_value) == (4, Decimal("64.70"))


def test_the_command_recomputes_every_customers_figures(buyers, capsys):
    ann, bob = buyers
    run()
    Customer.objects.filter(pk=bob.pk).update(lifetime_value=999, last_purchase_at=None)

    with pytest.raises(CommandError):
        call_command("refresh_customer_figures", "--check")
    call_command("refresh_customer_figures")

    bob.refresh_from_db()
    assert bob.lifetime_value == Decimal("19.90") and bob.last_purchase_at is not None
    call_command("refresh_customer_figures", "--check")
    assert "0 disagree" in capsys.readouterr().out


def test_the_nightly_check_records_and_repairs_drift(buyers, caplog):
    ann, bob = buyers
    run()
    Customer.objects.filter(pk=ann.pk).update(purchase_count=1)

    customer_figures_check_task()

    check = FiguresCheck.objects.get()
    assert (check.customers_checked, check.customers_drifted) == (2, 1)
    assert check.drifted_ids == [ann.pk]
    assert "drift" in caplog.text
    ann.refresh_from_db()
    assert ann.purchase_count == 4
    assert PeriodicTask.objects.filter(
        task="customers.tasks.customer_figures_check_task", crontab__hour="3"
    ).exists()
