"""Phone numbers: one reading of what a person typed, for comparing, hashing and (next) storing.

A number is read with the `phonenumbers` library (Google's libphonenumber metadata): in
international form (+49 30 1234567, 0049 30 1234567) it stands on its own, in national form
(030 1234567) it is read as a number of PHONE_DEFAULT_REGION. Every way of writing one number
gives the same E.164 form, +49301234567, so an erased person's number is recognised however an
import, a form or the API writes it. Text that cannot be read as a possible number falls back to
its digits.
"""

import functools

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError


@functools.lru_cache(maxsize=8192)
def _parsed(value: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def _region(region: str | None) -> str:
    return (region or settings.PHONE_DEFAULT_REGION or "").upper()


def phone_e164(value: str | None, *, region: str | None = None) -> str | None:
    """The E.164 form of a phone number (+49301234567); None when it is not a possible number."""
    text = (value or "").strip()
    if not text:
        return None
    number = _parsed(text, _region(region))
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_validate(value: str | None, *, region: str | None = None) -> str:
    """The E.164 form of a phone number a person typed; a ValidationError (for the field
    "phone") when it cannot be one. For the form, the API and the import alike."""
    e164 = phone_e164(value, region=region)
    if e164 is None:
        raise ValidationError(
            f"{value!r} is not a phone number: write it with its country code (+49 30 1234567) "
            f"or as a number of {_region(region) or 'no default region'}",
            code="invalid_phone",
        )
    return e164


def phone_key(value: str | None, *, region: str | None = None) -> str:
    """What two phone numbers are compared by (and hashed from): the digits of the E.164 form,
    or of the text as typed when it is not a possible number; "" for none.

    The digits without the "+": a number typed in international form then keeps the key that
    the earlier comparison (punctuation stripped) gave it, so hashes stored before still match.
    """
    e164 = phone_e164(value, region=region)
    if e164 is not None:
        return e164[1:]
    return "".join(char for char in (value or "") if char.isdigit())


def phone_parts(value: str | None, *, region: str | None = None) -> tuple[str, str] | None:
    """The country code and national number of a possible number, as digits; None otherwise."""
    number = _parsed(value or "", _region(region))
    if number is None:
        return None
    return str(number.country_code), str(number.national_number)


def phone_national_digits(key: str) -> str:
    """The digits every written form of the number with this key contains once its punctuation
    is removed (national or international): for a text search of files."""
    number = _parsed(f"+{key}", "") if key else None
    return str(number.national_number) if number is not None else key
