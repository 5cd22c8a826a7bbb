"""The customer's profile fields, once: their labels and, per field, the one function that reads
what a person typed (in the edit form, in the API, in an import file) into what is stored.

Each cleaner takes text (or None) and returns the stored value, or raises a ValidationError
whose message says what is wrong with that value. Surrounding spaces are dropped and an empty
value is the field's blank (None for the fields that are unique when present, "" otherwise).
The form (customers.forms), the serializer (customers.api.serializers) and the importer
(customers.importing.customers) call the same cleaner, so they accept, refuse and store alike;
tests/customers/test_field_rules.py feeds the same random values through all three.
"""

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries import countries

from customers.phones import phone_validate

# The oldest birth date a customer may have: never before 1900, and never more than 130 years
# ago (whichever is later).
BIRTH_DATE_FLOOR = date(1900, 1, 1)
MAX_AGE_YEARS = 130

# Names people write for their country in its own language (or a common short form) that the
# English names of django-countries do not cover. A code (DE, DEU) or an English name
# (Germany) is understood without this table.
COUNTRY_ALIASES = {
    "deutschland": "DE",
    "allemagne": "DE",
    "österreich": "AT",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "ísland": "IS",
    "france": "FR",
    "españa": "ES",
    "espana": "ES",
    "italia": "IT",
    "portugal": "PT",
    "nederland": "NL",
    "the netherlands": "NL",
    "holland": "NL",
    "belgië": "BE",
    "belgie": "BE",
    "belgique": "BE",
    "polska": "PL",
    "česko": "CZ",
    "ceska republika": "CZ",
    "česká republika": "CZ",
    "czech republic": "CZ",
    "slovensko": "SK",
    "magyarország": "HU",
    "magyarorszag": "HU",
    "ελλάδα": "GR",
    "éire": "IE",
    "eire": "IE",
    "uk": "GB",
    "great britain": "GB",
    "united kingdom": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "usa": "US",
    "united states": "US",
    "u.s.a.": "US",
    "россия": "RU",
    "russia": "RU",
    "türkiye": "TR",
    "turkey": "TR",
    "brasil": "BR",
    "méxico": "MX",
    "日本": "JP",
    "中国": "CN",
}


def _text(value: object) -> str:
    """The text of a value as typed, surrounding spaces dropped; NUL refused (nothing stores it)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("Enter text.", code="invalid")
    if "\x00" in value:
        raise ValidationError("The value holds a NUL character (\\x00), which cannot be stored.")
    return value.strip()


def shown(text: str, limit: int = 60) -> str:
    """A value as a message quotes it: control characters made visible, a long one cut short."""
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _length(text: str, max_length: int) -> str:
    if len(text) > max_length:
        raise ValidationError(
            f"Too long: {len(text)} characters, at most {max_length}.", code="max_length"
        )
    return text


def clean_text(max_length: int) -> Callable[..., str]:
    def clean(value: object, **options) -> str:
        return _length(_text(value), max_length)

    return clean


def clean_identifier(value: object, **options) -> str | None:
    """An external id: text of up to 100 characters, None when blank (unique only when given)."""
    return _length(_text(value), 100) or None


def clean_email(value: object, **options) -> str | None:
    """An email address, None when blank. The domain is lower-cased (it is case-insensitive and
    people type it either way); the part before the @ is kept as typed, as mail servers may tell
    its cases apart. Two addresses that differ only in case belong to one customer: see
    customer_email_in_use."""
    text = _text(value)
    if not text:
        return None
    if len(text) > 254:
        raise ValidationError("The email address is longer than 254 characters.")
    try:
        validate_email(text)
    except ValidationError:
        raise ValidationError(f"'{shown(text)}' is not a valid email address.") from None
    local, _at, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_phone(value: object, **options) -> str:
    """A phone number in E.164 form (+49301234567), read with PHONE_DEFAULT_REGION when written
    without its country code; "" when blank."""
    text = _text(value)
    if not text:
        return ""
    if len(text) > 40:
        raise ValidationError("A phone number is at most 40 characters long.")
    try:
        return phone_validate(text)
    except ValidationError as exc:
        raise ValidationError(exc.messages[0].replace(repr(text), f"'{shown(text)}'")) from None


_birth_date_bounds: list = [0.0, None, None]  # valid until (monotonic seconds), oldest, today


def birth_date_bounds() -> tuple[date, date]:
    """The oldest and the latest birth date accepted now (today in TIME_ZONE). Kept for a
    second: an import reads thousands of dates a second, and the day changes once a day."""
    if time.monotonic() >= _birth_date_bounds[0]:
        today = timezone.localdate()
        try:
            oldest = today.replace(year=today.year - MAX_AGE_YEARS)
        except ValueError:  # 29 February
            oldest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
        _birth_date_bounds[:] = [time.monotonic() + 1.0, max(oldest, BIRTH_DATE_FLOOR), today]
    return _birth_date_bounds[1], _birth_date_bounds[2]


def birth_date_check(value: date) -> date:
    """Refuse a birth date in the future or implausibly long ago."""
    oldest, today = birth_date_bounds()
    if value > today:
        raise ValidationError(f"{value.isoformat()} is in the future: not a birth date.")
    if value < oldest:
        raise ValidationError(
            f"{value.isoformat()} is before {oldest.isoformat()}: not a plausible birth date."
        )
    return value


def clean_birth_date(value: object, *, date_format: str | None = None, **options) -> date | None:
    """A date of birth, None when blank: ISO 8601 (1980-03-31) or YYYYMMDD, or `date_format`
    (an import's strptime format); never in the future nor before 1900 or 130 years ago."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return birth_date_check(value)
    text = _text(value)
    if not text:
        return None
    try:
        if date_format:
            parsed = datetime.strptime(text, date_format).date()
        elif len(text) > 10 and text[10] in "T ":
            parsed = datetime.fromisoformat(text).date()
        else:
            parsed = date.fromisoformat(text)
    except ValueError:
        if date_format:
            raise ValidationError(
                f"'{shown(text)}' does not match the date format '{date_format}'."
            ) from None
        raise ValidationError(
            f"'{shown(text)}' is not a date: use ISO 8601 (1980-03-31) or YYYYMMDD."
        ) from None
    return birth_date_check(parsed)


@functools.lru_cache(maxsize=4096)
def country_code(text: str) -> str:
    """The ISO 3166-1 alpha-2 code a person means by `text` (DE, deu, Germany, Deutschland),
    or "" when it names no country. A two-letter text is always read as a code: GE is Georgia."""
    key = " ".join(text.split()).casefold()
    if not key:
        return ""
    if len(key) in (2, 3) and key.isascii() and key.isalpha():
        code = countries.alpha2(key.upper())
        if code:
            return code
    code = countries.by_name(key, language="en")
    if code:
        return code
    return COUNTRY_ALIASES.get(key, "")


def clean_country(value: object, **options) -> str:
    """An ISO 3166-1 alpha-2 code, from a code or a country's name; "" when blank."""
    text = _text(value)
    if not text:
        return ""
    code = country_code(text) if len(text) <= 100 else ""
    if not code:
        raise ValidationError(
            f"'{shown(text)}' is not a country: use an ISO 3166-1 code (DE) or the country's "
            "English name (Germany)."
        )
    return code


def country_validate(value: str) -> None:
    """Model validator: a stored country is blank or a known alpha-2 code."""
    if value and value not in dict(countries):
        raise ValidationError(f"'{shown(value)}' is not an ISO 3166-1 alpha-2 country code.")


_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")


def clean_language(value: object, **options) -> str:
    """A language code such as en or pt-br, lower-cased; "" when blank."""
    text = _text(value).lower()
    if not text:
        return ""
    if len(text) > 8 or not text.isascii() or _LANGUAGE.fullmatch(text) is None:
        raise ValidationError(
            f"'{shown(text)}' is not a language code: use one such as en or pt-br."
        )
    return text


def clean_choice(choices: list[tuple[str, str]], what: str) -> Callable[..., str]:
    """A choice given by its value or its label, in any case; "" when blank."""
    lookup: dict[str, str] = {}
    for code, label in choices:
        lookup[code.casefold()] = code
        lookup[str(label).casefold()] = code
    allowed = ", ".join(code for code, _label in choices)

    def clean(value: object, **options) -> str:
        text = _text(value)
        if not text:
            return ""
        code = lookup.get(text.casefold())
        if code is None:
            raise ValidationError(f"'{shown(text)}' is not a {what}: use one of {allowed}.")
        return code

    return clean


@dataclass(frozen=True)
class CustomerField:
    """One profile field: its label, how a typed value becomes the stored one, and its kind
    (text, date or choice) for the form and the API."""

    name: str
    label: str
    clean: Callable[..., object]
    kind: str = "text"
    choices: tuple[tuple[str, str], ...] = field(default=())
    blank: object = ""


def _customer_fields() -> dict[str, CustomerField]:
    # Imported here: the model module imports the validators above.
    from customers.models import Customer

    genders = tuple(Customer.Gender.choices)
    incomes = tuple(Customer.IncomeBand.choices)
    return {
        f.name: f
        for f in (
            CustomerField("external_id", "External id", clean_identifier, blank=None),
            CustomerField("first_name", "First name", clean_text(100)),
            CustomerField("last_name", "Last name", clean_text(100)),
            CustomerField("email", "Email", clean_email, blank=None),
            CustomerField("phone", "Phone", clean_phone),
            CustomerField("birth_date", "Birth date", clean_birth_date, kind="date", blank=None),
            CustomerField(
                "gender", "Gender", clean_choice(list(genders), "gender"), "choice", genders
            ),
            CustomerField(
                "country",
                "Country",
                clean_country,
                "choice",
                tuple((code, name) for code, name in countries),
            ),
            CustomerField("region", "Region", clean_text(100)),
            CustomerField("city", "City", clean_text(100)),
            CustomerField("postal_code", "Postal code", clean_text(20)),
            CustomerField("language", "Language", clean_language),
            CustomerField(
                "income_band",
                "Income band",
                clean_choice(list(incomes), "income band"),
                "choice",
                incomes,
            ),
            CustomerField("source", "Source", clean_text(50)),
        )
    }


@functools.cache
def customer_fields() -> dict[str, CustomerField]:
    """The profile fields a person types, by name, in the order forms and files list them."""
    return _customer_fields()


# The profile fields a person types (the form, the API and an import file set them), and the
# editable fields of a customer: those plus the relations and custom attributes.
CUSTOMER_VALUE_FIELDS = (
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
    "source",
)
CUSTOMER_EDITABLE_FIELDS = ("account", *CUSTOMER_VALUE_FIELDS, "attributes", "owner")


def customer_field_clean(name: str, value: object, **options) -> object:
    """The stored value of a profile field for what was typed; ValidationError when refused."""
    return customer_fields()[name].clean(value, **options)


EMAIL_IN_USE = "Another customer already has this email address."
EXTERNAL_ID_IN_USE = "Another customer already has this external id."


def customer_external_id_in_use(external_id: str | None, *, exclude_pk: int | None = None) -> bool:
    """Whether another customer has this external id (compared exactly)."""
    if not external_id:
        return False
    from customers.models import Customer

    clash = Customer.objects.filter(external_id=external_id)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    return clash.exists()


def customer_email_in_use(email: str | None, *, exclude_pk: int | None = None) -> bool:
    """Whether another customer has this address. Addresses are one when they are equal
    ignoring case (lower() in the database, as the unique constraint and the import compare)."""
    if not email:
        return False
    from customers.models import Customer

    clash = Customer.objects.annotate(email_lower=Lower("email")).filter(
        email_lower=Lower(Value(email))
    )
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    return clash.exists()
