"""Numbers, dates and codes as people read them: money with its currency, percentages, counts,
durations, relative dates, and labels for the keys and codes the product stores.

    {% load numbers %}
    {{ purchase.amount|money:purchase.currency }}   €1,234.50
    {{ 0.0642|percent }}                           6.4%
    {{ 1234|count }}                               1,234
    {{ 3725|duration }}                            1 h 2 min
    {{ some_datetime|relative }}                   3 days ago
    {{ "job_title"|label }}                        Job title
"""

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from crm.labels import audit_detail_pairs, code_label

register = template.Library()

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _grouped(number: Decimal, places: int) -> str:
    return f"{number:,.{places}f}"


@register.filter
def money(value, currency: str = "EUR") -> str:
    """An amount with its currency: €1,234.50 (unknown currencies as "1,234.50 SEK")."""
    number = _decimal(value)
    if number is None:
        return "—"
    code = (currency or "EUR").upper()
    sign = "-" if number < 0 else ""
    text = _grouped(abs(number), 0 if code == "JPY" else 2)
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"


@register.filter
def percent(value, places: int = 1) -> str:
    """A share (0.0642) as a percentage: 6.4%."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{number * 100:,.{int(places)}f}%"


@register.filter
def percent_points(value, places: int = 1) -> str:
    """A value already in percent (6.42) with its sign: 6.4%."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{number:,.{int(places)}f}%"


@register.filter
def count(value) -> str:
    """A count with thousands separators: 12,345."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{int(number):,}"


@register.filter
def decimal(value, places: int = 2) -> str:
    """A measure rounded for reading: 9.4581 -> 9.46."""
    number = _decimal(value)
    if number is None:
        return "—"
    return _grouped(number, int(places))


@register.filter
def duration(value) -> str:
    """Seconds (or a timedelta) as "2 h 5 min", "45 s", "3 days"."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    else:
        number = _decimal(value)
        if number is None:
            return "—"
        seconds = float(number)
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@register.filter
def relative(value, now: dt.datetime | None = None) -> str:
    """A date or time relative to now: "just now", "5 minutes ago", "in 3 days", "yesterday"."""
    if not value:
        return "—"
    now = now or timezone.now()
    if isinstance(value, dt.datetime):
        delta = (now - value).total_seconds()
        future = delta < 0
        seconds = abs(delta)
        if seconds < 60:
            return "just now"
        for size, word in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"),
                           (3600, "hour"), (60, "minute")):  # fmt: skip
            if seconds >= size:
                text = _plural(int(seconds // size), word)
                return f"in {text}" if future else f"{text} ago"
    days = (timezone.localdate(now) - value).days
    if days == 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days == -1:
        return "tomorrow"
    return f"in {_plural(-days, 'day')}" if days < 0 else f"{_plural(days, 'day')} ago"


@register.filter
def label(value) -> str:
    """The label people read for a stored key or code: "job_title" -> "Job title"."""
    if value is None:
        return "—"
    return code_label(value) or "—"


@register.filter
def audit_details(details, names=None) -> SafeString:
    """An audit entry's details as labelled pairs ("Status: Completed · Segment: VIPs (#16)"),
    naming records from `names` ({kind: {id: name}}) when given."""
    pairs = audit_detail_pairs(details, names)
    return format_html_join(" · ", '<span class="detail-pair">{}: {}</span>', pairs)


@register.filter
def percent_of(part, whole) -> str:
    """`part` as a percentage of `whole`: 12 of 48 -> 25.0%."""
    numerator, denominator = _decimal(part), _decimal(whole)
    if numerator is None or not denominator:
        return "—"
    return percent(numerator / denominator)
