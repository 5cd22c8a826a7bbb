"""Deadlines the law gives to answer a data-subject request.

GDPR Art. 12(3): one month from receipt, extendable "by two further months" (so three months from
receipt) with the reasons told to the person. A month is a calendar month, clamped at the end of
a shorter month: a request received on 31 January is due on 28 (or 29) February.
CCPA (Cal. Civ. Code 1798.130): 45 days, extendable once by another 45 days.
"""

import calendar
import datetime as dt

from privacy.models import Law


def months_add(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later, clamped to the last day of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def deadline_for(*, law: str, received_on: dt.date, extended: bool = False) -> dt.date:
    """The date by which a request received on `received_on` must be answered."""
    if law == Law.GDPR:
        return months_add(received_on, 3 if extended else 1)
    if law == Law.CCPA:
        return received_on + dt.timedelta(days=90 if extended else 45)
    raise ValueError(f"law: expected one of {', '.join(Law.values)}, got {law!r}")
