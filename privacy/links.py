"""Signed links for customers without a login: the preference centre and double opt-in.

A link carries the customer (or pending grant) id signed with SECRET_KEY and a timestamp; it
stops working after its maximum age, and any change to it breaks the signature.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

PREFERENCE_SALT = "privacy.preference-centre"
_CONFIRM_SALT = "privacy.consent-confirmation"


class LinkError(Exception):
    """The link is broken, tampered with, or too old; `message` tells the person which."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _load(token: str, *, salt: str, max_age: int) -> dict:
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkError("This link has expired. Ask for a new one from your latest email.") from exc
    except signing.BadSignature as exc:
        raise LinkError("This link is not valid: it may have been cut off or changed.") from exc
    if not isinstance(payload, dict):
        raise LinkError("This link is not valid: it may have been cut off or changed.")
    return payload


def preference_token(*, customer_id: int) -> str:
    return signing.dumps({"c": customer_id}, salt=PREFERENCE_SALT)


def preference_url(*, customer_id: int) -> str:
    """The path of a customer's preference centre (put it in every email, with the site's host)."""
    return reverse("privacy:preference_centre", args=[preference_token(customer_id=customer_id)])


def preference_token_customer_id(token: str) -> int:
    payload = _load(token, salt=PREFERENCE_SALT, max_age=settings.PRIVACY_PREFERENCE_LINK_MAX_AGE)
    if not isinstance(payload.get("c"), int):
        raise LinkError("This link is not valid: it may have been cut off or changed.")
    return payload["c"]


def confirmation_token(*, pending_id: int) -> str:
    return signing.dumps({"p": pending_id}, salt=_CONFIRM_SALT)


def confirmation_url(*, pending_id: int) -> str:
    return reverse("privacy:consent_confirm", args=[confirmation_token(pending_id=pending_id)])


def confirmation_token_pending_id(token: str) -> int:
    payload = _load(token, salt=_CONFIRM_SALT, max_age=settings.PRIVACY_CONFIRMATION_LINK_MAX_AGE)
    if not isinstance(payload.get("p"), int):
        raise LinkError("This link is not valid: it may have been cut off or changed.")
    return payload["p"]
