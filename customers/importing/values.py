"""Cell parsers: each turns the text of one cell into a value or raises CellError with a reason."""

import re
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email


class CellError(ValueError):
    """A cell that cannot be imported; the message is the reason shown to the user."""


_AMOUNT = re.compile(r"\d{1,10}(?:\.\d{1,2})?|\.\d{1,2}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
CENT = Decimal("0.01")


def shown(text: str, limit: int = 80) -> str:
    """A cell as an error message quotes it: a NUL made visible, a long one cut short."""
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_datetime(text: str, *, date_format: str | None, tz: tzinfo) -> datetime:
    """ISO 8601 (also YYYYMMDD) or the given strptime format; naive values are in `tz`."""
    try:
        if date_format:
            value = datetime.strptime(text, date_format)
        else:
            value = datetime.fromisoformat(text)
    except ValueError:
        if date_format:
            raise CellError(
                f"'{shown(text)}' does not match the date format '{date_format}'"
            ) from None
        raise CellError(
            f"'{shown(text)}' is not a date: use ISO 8601 (2024-03-31, 2024-03-31T14:05:00+02:00) "
            "or YYYYMMDD"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value


def parse_amount(text: str) -> Decimal:
    """A non-negative amount with '.' decimals and at most two of them (12.50)."""
    if _AMOUNT.fullmatch(text) is None:
        if text.startswith("-"):
            raise CellError(f"'{shown(text)}' is negative: amounts must be 0 or more")
        raise CellError(
            f"'{shown(text)}' is not an amount: use digits with '.' for decimals, at most 2 decimals "
            "and 10 digits before the point (1234.50)"
        )
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise CellError(f"'{shown(text)}' is not an amount") from None


def parse_quantity(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 9 or int(text) < 1:
        raise CellError(f"'{shown(text)}' is not a quantity: use a whole number of 1 or more")
    return int(text)


def parse_currency(text: str) -> str:
    if _CURRENCY.fullmatch(text) is None:
        raise CellError(f"'{shown(text)}' is not a currency: use a 3-letter ISO 4217 code (EUR)")
    return text.upper()


def parse_email(text: str) -> str:
    try:
        validate_email(text)
    except ValidationError:
        raise CellError(f"'{shown(text)}' is not a valid email address") from None
    if len(text) > 254:
        raise CellError("the email address is longer than 254 characters")
    return text


def choice_lookup(choices: list[tuple[str, str]]) -> dict[str, str]:
    lookup = {}
    for value, label in choices:
        lookup[value.lower()] = value
        lookup[str(label).lower()] = value
    return lookup


def check_length(text: str, *, max_length: int) -> str:
    if len(text) > max_length:
        raise CellError(f"too long: {len(text)} characters, at most {max_length}")
    return text
