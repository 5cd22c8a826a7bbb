"""Hostile files on the bulk consent page: a broken list is refused with the line at fault,
never a server error, and queues nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from privacy.models import BulkConsentJob
from tests.confirming import press_confirm
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_list(client, privacy_user, django_capture_on_commit_callbacks):
    client.force_login(privacy_user)

    def post(content: bytes):
        asked = client.post(
            reverse("privacy:bulk_consent"),
            {
                "purpose": "email_marketing",
                "state": "withdrawn",
                "evidence": "Complaint list 2025-03",
                "file": SimpleUploadedFile("list.csv", content, "text/csv"),
            },
        )
        if asked.status_code != 200:
            return asked
        with django_capture_on_commit_callbacks(execute=True):
            return press_confirm(client, asked)

    return post


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email\na@example.com\nb\x00@example.com\n", "line 3 holds a NUL character"),
        (
            b"email\n" + b"A" * 1_000_000 + b"\n",
            "line 2 is not valid CSV (a cell is longer than 131,072 characters)",
        ),
        ("email\na@example.com\n".encode("utf-16"), "The file is not UTF-8 text."),
    ],
    ids=["NUL", "1 MB cell", "UTF-16"],
)
def test_a_list_that_cannot_be_read_is_refused_with_the_line_at_fault(post_list, content, message):
    response = post_list(content)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BulkConsentJob.objects.exists()


def test_a_list_whose_lines_end_in_cr_alone_is_read_line_by_line(post_list):
    CustomerFactory(email="a@example.com")
    CustomerFactory(external_id="EXT-B")

    post_list(b"email\rA@example.com\rEXT-B\rnobody@example.com\r")

    job = BulkConsentJob.objects.get()
    assert (job.status, job.matched, job.unmatched) == ("done", 2, 1)
