"""The import_customers and import_purchases commands."""

import csv

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Purchase
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers_file(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("external_id,email\nC1,ann@example.com\nC2,bob@example.com\n", encoding="utf-8")
    return path


@pytest.fixture
def purchases_file_with_a_bad_row(tmp_path):
    path = tmp_path / "purchases.csv"
    path.write_text(
        "customer_external_id,purchased_at,amount\nC1,2024-01-01,10\nC1,yesterday,5\n",
        encoding="utf-8",
    )
    return path


def test_import_customers_prints_the_counts(customers_file, capsys):
    call_command("import_customers", str(customers_file), "--no-progress")

    assert "read 2, created 2, updated 0, unchanged 0, failed 0" in capsys.readouterr().out
    assert Customer.objects.count() == 2


def test_import_with_a_failed_row_exits_non_zero_and_writes_the_report(
    purchases_file_with_a_bad_row, tmp_path, capsys
):
    CustomerFactory(external_id="C1")
    report = tmp_path / "errors.csv"

    with pytest.raises(CommandError) as failure:
        call_command(
            "import_purchases",
            str(purchases_file_with_a_bad_row),
            "--report",
            str(report),
            "--no-progress",
        )

    assert failure.value.returncode == 1
    captured = capsys.readouterr()
    assert "read 2, created 1, updated 0, unchanged 0, failed 1" in captured.out
    assert "line 3, column purchased_at" in captured.err
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["line"], r["column"], r["value"]) for r in rows] == [
        ("3", "purchased_at", "yesterday")
    ]
    assert "not a date" in rows[0]["reason"]
    assert Purchase.objects.count() == 1


def test_import_purchases_creates_customers_when_asked(purchases_file_with_a_bad_row):
    with pytest.raises(CommandError):
        call_command(
            "import_purchases",
            str(purchases_file_with_a_bad_row),
            "--create-customers",
            "--no-progress",
        )

    assert Customer.objects.filter(external_id="C1").exists()


def test_map_and_date_format_options_reach_the_import(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("Nr,Mail,Geburtstag\nK1,kim@example.com,24.12.1990\n", encoding="utf-8")

    call_command(
        "import_customers",
        str(path),
        "--map",
        "external_id=Nr",
        "--map",
        "email=Mail",
        "--map",
        "birth_date=Geburtstag",
        "--date-format",
        "%d.%m.%Y",
        "--no-progress",
    )

    kim = Customer.objects.get(external_id="K1")
    assert (kim.email, str(kim.birth_date)) == ("kim@example.com", "1990-12-24")


def test_file_that_cannot_be_imported_is_refused_with_its_reason(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,city\nAnn,Berlin\n", encoding="utf-8")

    with pytest.raises(CommandError, match="external_id"):
        call_command("import_customers", str(path), "--no-progress")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_customers", str(tmp_path / "nope.csv"))
