"""Hostile member lists: a CSV of emails or external ids that is broken or not text at all
gets a clear answer, never a server error, and changes no member when it cannot be read."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from segments.services import segment_members_from_csv
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256))


@pytest.fixture
def zoe():
    return CustomerFactory(email="zoe@example.com", external_id="Z-1")


@pytest.fixture
def static_segment():
    return StaticSegmentFactory()


@pytest.mark.parametrize(
    ("content", "unmatched"),
    [
        (b"email\nzoe@example.com\nzo\x00e@example.com\n", [(3, "zo\\x00e@example.com")]),
        (b"zoe@example.com\n" + b"\x00" * 30 + b"\n", [(2, ("\\x00" * 30)[:79] + "…")]),
        (b"X" * 10_000 + b"\nZ-1\n", [(1, "X" * 79 + "…")]),
        (b"jos\xe9@example.com\nzoe@example.com\n", [(1, "jos\ufffd@example.com")]),
        (b"\xef\xbb\xbfemail\r\nzoe@example.com\r\n", []),
        (b"email\rghost@example.com\rzoe@example.com\r", [(2, "ghost@example.com")]),
        (b'"Z-1\nstill quoted', [(2, "Z-1\nstill quoted")]),
    ],
    ids=[
        "NUL in a value",
        "a line of NULs",
        "10,000 characters",
        "Latin-1",
        "BOM",
        "CR only",
        "quote left open",
    ],
)
def test_values_that_name_no_customer_are_reported_by_line_and_the_rest_join(
    static_segment, zoe, content, unmatched
):
    report = segment_members_from_csv(segment=static_segment, content=content)

    assert report.unmatched == unmatched
    assert report.matched == (0 if content.startswith(b'"') else 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PNG, "the file is a PNG image, not CSV text"),
        (XLSX, "the file is an Excel workbook (.xlsx) or another ZIP archive, not CSV text"),
        ("email\nzoe@example.com\n".encode("utf-16"), "the file is UTF-16 text, not UTF-8"),
        (
            b"zoe@example.com\n" + b"A" * 1_000_000 + b"\n",
            "line 2: not valid CSV (a cell is longer than 131,072 characters)",
        ),
    ],
    ids=["png", "xlsx", "utf-16", "1 MB cell"],
)
def test_a_file_that_cannot_be_read_is_refused_whole(static_segment, zoe, content, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        segment_members_from_csv(segment=static_segment, content=content)

    assert raised.value.message_dict["file"][0].startswith(message)
    assert not static_segment.memberships.exists()


@pytest.mark.parametrize(
    "content",
    [PNG, b"zoe@example.com\nzo\x00e@example.com\n", b"A" * 1_000_000 + b"\n"],
    ids=["png", "NUL", "1 MB cell"],
)
def test_the_api_answers_a_hostile_member_file_without_a_server_error(
    api_client_for, marketing_user, static_segment, zoe, content
):
    response = api_client_for(marketing_user).post(
        f"/api/segments/{static_segment.pk}/add-members/",
        {"file": SimpleUploadedFile("m.csv", content)},
        format="multipart",
    )

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "file" in response.data
    else:
        assert response.data["unmatched"] == [{"line": 2, "value": "zo\\x00e@example.com"}]


def test_the_segment_page_says_why_a_member_file_was_refused(
    client, marketing_user, static_segment
):
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments:members", args=[static_segment.pk]),
        {"file": SimpleUploadedFile("m.csv", PNG)},
        follow=True,
    )

    assert response.status_code == 200
    assert "the file is a PNG image, not CSV text" in response.content.decode()
