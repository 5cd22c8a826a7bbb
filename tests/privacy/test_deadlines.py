import datetime as dt

import pytest

from privacy.data_requests import RequestError, data_request_extend
from privacy.deadlines import deadline_for, months_add
from tests.privacy.factories import DataSubjectRequestFactory


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (dt.date(2025, 1, 31), dt.date(2025, 2, 28)),
        (dt.date(2024, 1, 31), dt.date(2024, 2, 29)),
        (dt.date(2025, 3, 31), dt.date(2025, 4, 30)),
        (dt.date(2025, 12, 15), dt.date(2026, 1, 15)),
        (dt.date(2025, 2, 28), dt.date(2025, 3, 28)),
    ],
)
def test_gdpr_deadline_is_one_calendar_month_clamped_at_month_end(received, due):
    assert deadline_for(law="gdpr", received_on=received) == due


def test_gdpr_extension_gives_three_months_from_receipt_not_from_the_clamped_deadline():
    assert deadline_for(law="gdpr", received_on=dt.date(2025, 1, 31), extended=True) == dt.date(
        2025, 4, 30
    )


def test_ccpa_deadline_is_45_days_and_90_when_extended():
    received = dt.date(2025, 1, 31)

    assert deadline_for(law="ccpa", received_on=received) == dt.date(2025, 3, 17)
    assert deadline_for(law="ccpa", received_on=received, extended=True) == dt.date(2025, 5, 1)


def test_months_add_goes_backwards_across_years():
    assert months_add(dt.date(2025, 3, 31), -36) == dt.date(2022, 3, 31)
    assert months_add(dt.date(2024, 2, 29), -12) == dt.date(2023, 2, 28)


@pytest.mark.django_db
def test_extending_a_request_records_the_reason_and_moves_the_deadline(privacy_user):
    dsr = DataSubjectRequestFactory(received_on=dt.date(2025, 1, 31), deadline=dt.date(2025, 2, 28))

    data_request_extend(
        request=dsr, reason="Data held in three archived systems", actor=privacy_user
    )

    dsr.refresh_from_db()
    assert dsr.deadline == dt.date(2025, 4, 30)
    assert dsr.extended and dsr.extension_reason == "Data held in three archived systems"


@pytest.mark.django_db
def test_a_request_can_be_extended_only_once_and_only_with_a_reason(privacy_user):
    dsr = DataSubjectRequestFactory(
        law="ccpa", received_on=dt.date(2025, 1, 31), deadline=dt.date(2025, 3, 17)
    )

    with pytest.raises(RequestError, match="reason"):
        data_request_extend(request=dsr, reason="  ", actor=privacy_user)
    data_request_extend(request=dsr, reason="Complex request", actor=privacy_user)
    with pytest.raises(RequestError, match="already extended"):
        data_request_extend(request=dsr, reason="Again", actor=privacy_user)
