"""Hostile files: whatever bytes are uploaded as a CSV, the import says what is wrong and where.

A bad row is reported with its line, the column as the file names it and the problem, and the
other rows go in; a file that cannot be read at all gets one clear error. Nothing raises,
through the services or the upload page.
"""

import csv
import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.importing import (
    ImportFileError,
    customers_import,
    import_job_run,
    purchases_import,
    reading,
)
from customers.models import Customer, ImportJob, Purchase
from tests.conftest import DEMO_PASSWORD
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\nIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\r\n-\xb4\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)) * 4
HEADER = "external_id,email,first_name\n"
GOOD = "C9,nine@example.com,Nina\n"
EMAIL_300 = "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "b" * 48 + ".com"


def import_customers(data: bytes):
    return customers_import(stream=io.BytesIO(data))


def import_purchases(data: bytes):
    return purchases_import(stream=io.BytesIO(data), create_customers=True)


def reported(result) -> list[tuple[int, str, str]]:
    return [(e.line, e.column, e.reason) for e in result.errors]


# One bad row among good ones: (file, line, column, the start of the reason).
BAD_CUSTOMER_ROWS = {
    "NUL in a cell": (
        HEADER + "C1,ann@example.com,An\x00n\n" + GOOD,
        2,
        "first_name",
        "the cell holds a NUL character",
    ),
    "NUL in the upsert key": (
        HEADER + "C\x001,ann@example.com,Ann\n" + GOOD,
        2,
        "external_id",
        "the cell holds a NUL character",
    ),
    "NUL in an email": (
        HEADER + "C1,ann\x00@example.com,Ann\n" + GOOD,
        2,
        "email",
        "the cell holds a NUL character",
    ),
    "NUL in a custom attribute": (
        "external_id,attr.tier\nC1,go\x00ld\nC9,silver\n",
        2,
        "attr.tier",
        "the cell holds a NUL character",
    ),
    "NUL in a tag": (
        "external_id,tags\nC1,v\x00ip\nC9,vip\n",
        2,
        "tags",
        "the cell holds a NUL character",
    ),
    "a line of NULs": (HEADER + "\x00" * 40 + "\n" + GOOD, 2, "", "expected 3 fields"),
    "NULs between commas": (HEADER + "\x00,\x00,\x00\n" + GOOD, 2, "external_id", "the cell"),
    "more cells than the header": (HEADER + "C1,ann@example.com,Ann,x\n" + GOOD, 2, "", "expected"),
    "fewer cells than the header": (HEADER + "C1,ann@example.com\n" + GOOD, 2, "", "expected"),
    "a cell of 1 MB": (
        HEADER + "C1,ann@example.com," + "A" * 1_000_000 + "\n" + GOOD,
        2,
        "",
        "not valid CSV: a cell is longer than 131,072 characters",
    ),
    "a carriage return in a cell that is not quoted": (
        HEADER + "C1,ann@example.com,A\rB\n" + GOOD,
        2,
        "",
        "not valid CSV: a carriage return (CR) inside a cell that is not quoted",
    ),
    "an email of 300 characters": (
        HEADER + f"C1,{EMAIL_300},Ann\n" + GOOD,
        2,
        "email",
        "the email address is longer than 254 characters",
    ),
    "an external id of 10,000 characters": (
        HEADER + "X" * 10_000 + ",ann@example.com,Ann\n" + GOOD,
        2,
        "external_id",
        "too long: 10000 characters, at most 100",
    ),
    "a birth date 0000-00-00": (
        "external_id,birth_date\nC1,0000-00-00\nC9,1990-01-01\n",
        2,
        "birth_date",
        "'0000-00-00' is not a date",
    ),
    "a birth date 2026-02-30": (
        "external_id,birth_date\nC1,2026-02-30\nC9,1990-01-01\n",
        2,
        "birth_date",
        "'2026-02-30' is not a date",
    ),
    "a birth date 9999-12-31T99:99": (
        "external_id,birth_date\nC1,9999-12-31T99:99\nC9,1990-01-01\n",
        2,
        "birth_date",
        "'9999-12-31T99:99' is not a date",
    ),
}


@pytest.mark.parametrize("case", BAD_CUSTOMER_ROWS)
def test_a_bad_customer_row_is_reported_and_the_others_go_in(case):
    text, line, column, reason = BAD_CUSTOMER_ROWS[case]

    result = import_customers(text.encode())

    [(error_line, error_column, error_reason)] = reported(result)
    assert (error_line, error_column) == (line, column)
    assert error_reason.startswith(reason)
    assert (result.read, result.created, result.failed) == (2, 1, 1)
    assert Customer.objects.filter(external_id="C9").exists()


def test_an_error_quotes_a_long_cell_cut_short_and_a_nul_visibly():
    result = import_customers(
        ("external_id,country\nC1," + "Q" * 5000 + "\nC2,D\x00E\nC9,DE\n").encode()
    )

    long_cell, nul = (e.reason for e in result.errors)
    assert long_cell.startswith("'QQQ") and "…'" in long_cell and len(long_cell) < 200
    assert "\x00" not in nul
    assert result.errors[1].value == "D\\x00E"


def test_a_line_of_megabytes_is_one_bad_row_read_a_piece_at_a_time(monkeypatch):
    # Lines are read at most MAX_LINE_BYTES at a time (4 MB; 64 KB here to keep the test
    # small), so a file without line breaks never fills the memory.
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 64 * 1024)
    huge = "C2," + "a@b.c," * 50_000  # 300 KB of short cells: a row with too many of them
    data = f"external_id,email\nC1,ann@example.com\n{huge}\nC9,zoe@example.com\n".encode()

    result = import_customers(data)

    [(line, column, reason)] = reported(result)
    assert (line, column) == (3, "")
    assert reason.startswith("not valid CSV: a cell is longer than")
    assert (result.read, result.created, result.failed) == (3, 2, 1)
    source = reading.CsvSource(io.BytesIO(data))
    assert len(list(source.rows())) == 3
    assert source.bytes_read == len(data)  # the progress bar counts every byte


def test_latin1_invalid_utf8_and_encoded_surrogate_lines_are_reported_one_by_one():
    data = (
        HEADER.encode()
        + "C1,ann@example.com,José\n".encode("latin-1")
        + b"C2,b@x.com,\xff\n"
        + b"C3,c@x.com,\xed\xa0\x80\n"  # a lone surrogate, which PostgreSQL refuses
    )

    result = import_customers(data + GOOD.encode())

    assert reported(result) == [
        (2, "", "the line is not valid UTF-8"),
        (3, "", "the line is not valid UTF-8"),
        (4, "", "the line is not valid UTF-8"),
    ]
    assert result.created == 1


def test_a_quoted_cell_left_open_at_the_end_is_reported_not_swallowed_silently():
    result = import_customers(
        (HEADER + GOOD + 'C1,ann@example.com,"Ann\nC2,b@x.com,Bob\n').encode()
    )

    assert reported(result) == [
        (
            3,
            "first_name",
            'a quoted cell is not closed: its opening quote (") takes in the rest of the file; '
            "close it or remove it",
        )
    ]
    assert result.created == 1 and not Customer.objects.filter(external_id="C1").exists()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xef\xbb\xbf" + (HEADER + GOOD).encode(), id="UTF-8 with BOM"),
        pytest.param((HEADER + GOOD).replace("\n", "\r\n").encode(), id="CRLF"),
        pytest.param((HEADER + 'C9,nine@example.com,"Ni\nna"\n').encode(), id="quoted newline"),
        pytest.param((HEADER + 'C9,nine@example.com,"Ni\rna"\n').encode(), id="quoted CR"),
        pytest.param(
            (HEADER.strip() + "," + ",".join(f"c{i}" for i in range(10_000)) + "\n").encode()
            + GOOD.strip().encode()
            + b"," * 10_000
            + b"\n",
            id="10,000 columns",
        ),
    ],
)
def test_files_that_are_unusual_but_valid_import(data):
    result = import_customers(data)

    assert (result.created, result.failed) == (1, 0)
    assert Customer.objects.get(external_id="C9").first_name.replace("\n", "").replace(
        "\r", ""
    ) == ("Nina")


def test_an_email_at_the_length_limit_imports():
    email = "a" * 64 + "@" + ("b" * 61 + ".") * 3 + "co"  # 253 characters

    result = import_customers((HEADER + f"C1,{email},Ann\n").encode())

    assert (result.created, result.failed) == (1, 0)


def test_a_row_that_makes_the_set_based_import_go_row_by_row_may_hold_a_carriage_return():
    # Two rows reaching one customer go through the row-by-row rules, with their own COPY.
    CustomerFactory(external_id="C1", email="ann@example.com")

    result = import_customers((HEADER + 'C1,,"A\rB"\n,ann@example.com,Ann\n').encode())

    assert (result.updated + result.unchanged, result.failed) == (2, 0)


# Files that cannot be read at all: (file, the error).
UNREADABLE = {
    "empty": (b"", "the file is empty: expected a header row"),
    "only blank lines": (b"\n\n\n\n", "line 1: the header row is empty"),
    "UTF-16 with BOM": (
        (HEADER + GOOD).encode("utf-16"),
        'line 1: the file is UTF-16 text, not UTF-8: save it as "CSV UTF-8" and upload that',
    ),
    "Latin-1 header": (
        "external_id,prénom\n".encode("latin-1"),
        "line 1: the header is not valid UTF-8 (Latin-1 or Windows-1252 text?)",
    ),
    "PNG image": (PNG, "line 1: the file is a PNG image, not CSV text"),
    "xlsx renamed .csv": (
        XLSX,
        "line 1: the file is an Excel workbook (.xlsx) or another ZIP archive, not CSV text",
    ),
    "NUL in a header name": (
        ("external_id,first\x00name\n" + "C1,Ann\n").encode(),
        "line 1: the header holds NUL bytes, as binary files do",
    ),
    "lines ending in CR alone": (
        (HEADER + GOOD).replace("\n", "\r").encode(),
        "line 1: a carriage return (CR) outside quotes; lines that end in CR alone",
    ),
    "duplicate header names": (
        b"external_id,email,email\nC1,a@x.com,b@x.com\n",
        "line 1: the column 'email' appears twice in the header",
    ),
    "a header cell of 1 MB": (
        ("external_id," + "H" * 1_000_000 + "\n").encode(),
        "line 1: the header is not valid CSV (a cell is longer than 131,072 characters)",
    ),
    "a quoted header cell left open": (
        b'external_id,"email\nC1,a@x.com\n',
        "line 1: a quoted cell is not closed",
    ),
}


@pytest.mark.parametrize("case", UNREADABLE)
@pytest.mark.parametrize(
    "run", [import_customers, import_purchases], ids=["customers", "purchases"]
)
def test_a_file_that_cannot_be_read_gets_one_clear_error(run, case):
    data, message = UNREADABLE[case]

    with pytest.raises(ImportFileError) as raised:
        run(data)

    assert str(raised.value).startswith(message)
    assert "\x00" not in str(raised.value)
    assert not Customer.objects.exists() and not Purchase.objects.exists()


def test_a_header_only_file_imports_nothing():
    result = import_customers(HEADER.encode())

    assert result.counts() == {"read": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0}


def test_a_missing_column_error_lists_a_wide_header_briefly():
    with pytest.raises(ImportFileError) as raised:
        import_customers((",".join(f"c{i}" for i in range(10_000)) + "\n").encode())

    assert str(raised.value).endswith("c18, c19 and 9980 more")


# Purchases: (cells after customer C1, column, the start of the reason).
PURCHASE_HEADER = "customer_external_id,purchased_at,amount,quantity,category\n"
BAD_PURCHASE_CELLS = {
    "amount 1e309": ("2024-01-01,1e309,1,", "amount", "'1e309' is not an amount"),
    "amount nan": ("2024-01-01,nan,1,", "amount", "'nan' is not an amount"),
    "amount -0": ("2024-01-01,-0,1,", "amount", "'-0' is negative"),
    "amount of 20 digits": (
        "2024-01-01,99999999999999999999,1,",
        "amount",
        "'99999999999999999999' is not an amount",
    ),
    "quantity 1e309": ("2024-01-01,5,1e309,", "quantity", "'1e309' is not a quantity"),
    "quantity nan": ("2024-01-01,5,nan,", "quantity", "'nan' is not a quantity"),
    "quantity -0": ("2024-01-01,5,-0,", "quantity", "'-0' is not a quantity"),
    "quantity of 20 digits": (
        "2024-01-01,5,99999999999999999999,",
        "quantity",
        "'99999999999999999999' is not a quantity",
    ),
    "date 0000-00-00": ("0000-00-00,5,1,", "purchased_at", "'0000-00-00' is not a date"),
    "date 2026-02-30": ("2026-02-30,5,1,", "purchased_at", "'2026-02-30' is not a date"),
    "date 9999-12-31T99:99": (
        "9999-12-31T99:99,5,1,",
        "purchased_at",
        "'9999-12-31T99:99' is not a date",
    ),
    "a moment after year 9999 in UTC": (
        "9999-12-31T23:59-05:00,5,1,",
        "purchased_at",
        "'9999-12-31T23:59-05:00' is out of the range of dates",
    ),
    "a moment before year 1 in UTC": (
        "0001-01-01T00:00+05:00,5,1,",
        "purchased_at",
        "'0001-01-01T00:00+05:00' is out of the range of dates",
    ),
    "NUL in a category": ("2024-01-01,5,1,sh\x00oes", "category", "the cell holds a NUL"),
    "NUL in an amount": ("2024-01-01,5\x00,1,", "amount", "the cell holds a NUL"),
}


@pytest.mark.parametrize("case", BAD_PURCHASE_CELLS)
def test_a_bad_purchase_row_is_reported_and_the_others_go_in(case):
    CustomerFactory(external_id="C1")
    cells, column, reason = BAD_PURCHASE_CELLS[case]

    result = import_purchases((PURCHASE_HEADER + f"C1,{cells}\nC1,2024-01-01,5,1,shoes\n").encode())

    [(line, error_column, error_reason)] = reported(result)
    assert (line, error_column) == (2, column)
    assert error_reason.startswith(reason)
    assert (result.created, result.failed) == (1, 1)
    assert Purchase.objects.get().category == "shoes"


def test_purchases_of_unknown_customers_with_nul_or_overlong_keys_are_reported():
    result = import_purchases(
        (
            "customer_external_id,customer_email,purchased_at,amount\n"
            "N\x00EW,,2024-01-01,5\n"
            + "X" * 10_000
            + ",,2024-01-01,5\n"
            + f",{EMAIL_300},2024-01-01,5\n"
            + "NEW,,2024-01-01,5\n"
        ).encode()
    )

    assert [(e.line, e.column) for e in result.errors] == [
        (2, "customer_external_id"),
        (3, "customer_external_id"),
        (4, "customer_email"),
    ]
    assert (result.created, result.customers_created) == (1, 1)


# The upload page and its job.


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def importer_client(client, sales_user):
    client.login(username=sales_user.username, password=DEMO_PASSWORD)
    return client


@pytest.fixture
def upload(importer_client, django_capture_on_commit_callbacks):
    """Post a file to the upload page; the queued task runs in-process once the request commits."""

    def post(data: bytes, name: str = "leads.csv", kind: str = "customers"):
        file = SimpleUploadedFile(name, data, "text/csv")
        with django_capture_on_commit_callbacks(execute=True):
            return importer_client.post(
                reverse("customer_import:list"), {"kind": kind, "file": file}
            )

    return post


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (XLSX, "the file is an Excel workbook (.xlsx)"),
        (PNG, "the file is a PNG image"),
        ((HEADER + GOOD).encode("utf-16"), "the file is UTF-16 text"),
        (b"external_id,first\x00name\nC1,Ann\n", "the header holds NUL bytes"),
    ],
    ids=["xlsx", "png", "utf-16", "NUL in the header"],
)
def test_the_upload_page_refuses_a_file_that_is_not_csv_text(upload, data, message):
    response = upload(data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_the_job_of_a_file_with_bad_rows_finishes_and_offers_the_report(upload, importer_client):
    data = (
        HEADER
        + GOOD
        + "C1,ann@example.com,An\x00n\n"
        + ("C2,bob@example.com," + "B" * 1_000_000 + "\n")
        + 'C3,cem@example.com,"Cem\n'
    ).encode()

    upload(data, name="le\x00ads.csv")

    job = ImportJob.objects.get()
    assert (job.status, job.rows_read, job.rows_created, job.rows_failed) == ("done", 4, 1, 3)
    assert job.original_name == "leads.csv"
    page = importer_client.get(reverse("customer_import:detail", args=[job.pk]))
    assert page.status_code == 200 and "3 failed" in page.content.decode()
    report = importer_client.get(reverse("customer_import:report", args=[job.pk]))
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["3", "first_name"],
        ["4", ""],
        ["5", "first_name"],
    ]


def test_a_job_whose_file_turns_out_unreadable_fails_with_the_reason(sales_user):
    job = ImportJob.objects.create(
        kind="customers",
        file=SimpleUploadedFile("book.csv", b"external_id,first\x00name\nC1,x\n"),
        created_by=sales_user,
    )

    import_job_run(job=job)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.message.startswith("line 1: the header holds NUL bytes")


# Erasure rewrites the stored uploads: a line the csv module cannot read must not stop it.


def test_an_erasure_scrubs_an_upload_holding_lines_the_csv_module_cannot_read(settings):
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from privacy.erasure import customer_erase

    person = CustomerFactory(external_id="EXT-ZQ-1", email="zq@example.org", first_name="Zeb")
    huge = "H" * 200_000
    upload = (
        HEADER
        + f"EXT-OP-1,olga@example.com,{huge}\n"
        + f"EXT-ZQ-1,,{huge}\n"
        + "EXT-ZQ-1,zq@example.org,A\rB\n"
        + "EXT-OP-2,oleg@example.com,Oleg\n"
    )
    job = ImportJob.objects.create(
        kind=ImportJob.Kind.CUSTOMERS,
        status=ImportJob.Status.DONE,
        file=ContentFile(upload.encode(), name="people.csv"),
        finished_at=timezone.now(),
    )

    customer_erase(customer=person)

    job.refresh_from_db()
    with job.file.open("rb") as stored:
        lines = stored.read().decode().split("\n")
    assert lines == [
        HEADER.strip(),
        f"EXT-OP-1,olga@example.com,{huge}",
        "",
        "",
        "EXT-OP-2,oleg@example.com,Oleg",
        "",
    ]


# Any text at all in any cell: the import reads every row and accounts for each.

any_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12
) | st.sampled_from(["", "C1", "ann@example.com", "2024-01-01", "12.50", "1e309", "\x00", "\r"])


def _csv_of(rows: list[list[str]], header: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


UNREADABLE_ROW = ("not valid CSV", "a quoted cell is not closed")
CUSTOMER_COLUMNS = ["external_id", "email", "first_name", "phone", "birth_date", "country", "tags"]
PURCHASE_COLUMNS = ["customer_external_id", "purchased_at", "amount", "quantity", "category"]


@settings(
    max_examples=int(os.environ.get("IMPORT_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.lists(any_cell, min_size=len(CUSTOMER_COLUMNS), max_size=len(CUSTOMER_COLUMNS)),
        max_size=8,
    ),
    purchase_rows=st.lists(
        st.lists(any_cell, min_size=len(PURCHASE_COLUMNS), max_size=len(PURCHASE_COLUMNS)),
        max_size=8,
    ),
)
def test_any_cells_are_imported_or_reported_never_raised(rows, purchase_rows):
    with transaction.atomic():
        customers = import_customers(_csv_of(rows, CUSTOMER_COLUMNS))
        purchases = import_purchases(_csv_of(purchase_rows, PURCHASE_COLUMNS))
        transaction.set_rollback(True)

    for result, written in ((customers, rows), (purchases, purchase_rows)):
        unreadable = [e for e in result.errors if e.reason.startswith(UNREADABLE_ROW)]
        if not unreadable:  # once a row is not CSV, its lines may read as other rows
            assert result.read == len(written)
        assert result.read == result.created + result.updated + result.unchanged + result.failed
        assert all("\x00" not in e.reason for e in result.errors)
