"""Public signup: a person subscribes with their email (name optional) to the purposes offered,
from the public page or the public API, without a login.

The rules, in the order they apply:

- The person is matched by email (case-insensitive) or created with the source `signup_form`.
  An existing customer's profile is never changed from an unauthenticated form: anyone can type
  anyone's address.
- Each chosen purpose is recorded with the source `form` and the consent wording version the
  page showed (the current one when none is named).
- With double opt-in (PRIVACY_DOUBLE_OPT_IN, on by default) nothing is granted yet: a pending
  grant per purpose and one email with a signed confirmation link per purpose; only the
  confirmation records the grant (consent_confirm).
- A suppressed address (erased, or unsubscribed from everything) always goes through the emailed
  confirmation, whatever the setting: signing up again never silently makes it a marketing
  target. Confirming proves the person holds the address and asked afresh, which lifts the
  suppression (consent_confirm), as the preference centre does.
- The answer is the same whether the address was known, new, suppressed or already subscribed,
  so the page cannot be used to learn who is a customer. Submissions are limited per client
  address (PRIVACY_SIGNUP_LIMIT_PER_HOUR) and confirmation emails per address
  (PRIVACY_SIGNUP_EMAILS_PER_DAY), so the form cannot flood someone's inbox.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from customers.models import Customer
from customers.services import customer_create
from privacy.models import ConsentSource, ConsentStatus, ConsentWording, Purpose
from privacy.services import (
    consent_confirmations_request,
    consent_gpc_honour,
    consent_grant,
    consent_state_for,
)
from privacy.suppression import email_hash, suppression_contains

SIGNUP_SOURCE = "signup_form"
SIGNUP_EVIDENCE = "Public signup form"


@dataclass(frozen=True)
class SignupPurpose:
    """A purpose offered on the signup page with the wording version shown for it."""

    purpose: Purpose
    wording: ConsentWording | None


@dataclass
class SignupResult:
    """What a signup did; never shown to the person (the page answers the same every time)."""

    customer: Customer
    created: bool
    granted: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def wording_current(purpose_code: str) -> ConsentWording | None:
    """The wording in force today for a purpose: the newest one already effective."""
    return (
        ConsentWording.objects.filter(
            purpose_id=purpose_code, effective_from__lte=timezone.localdate()
        )
        .order_by("-effective_from", "-pk")
        .first()
    )


def signup_purposes() -> list[SignupPurpose]:
    """The purposes the signup page offers (PRIVACY_SIGNUP_PURPOSES), each with its wording."""
    offered = list(settings.PRIVACY_SIGNUP_PURPOSES)
    purposes = {p.code: p for p in Purpose.objects.filter(code__in=offered)}
    return [
        SignupPurpose(purpose=purposes[code], wording=wording_current(code))
        for code in offered
        if code in purposes
    ]


def _within_limit(key: str, *, limit: int, seconds: int) -> bool:
    """Count one more use of `key` in a fixed window; False once the limit is passed."""
    if limit <= 0:
        return True
    cache_key = f"privacy:signup:{key}"
    if cache.add(cache_key, 1, timeout=seconds):
        return True
    try:
        return cache.incr(cache_key) <= limit
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=seconds)
        return True


def signup_allowed(*, client: str | None) -> bool:
    """Whether one more signup from this client address is allowed this hour."""
    return _within_limit(
        f"client:{client or 'unknown'}",
        limit=settings.PRIVACY_SIGNUP_LIMIT_PER_HOUR,
        seconds=3600,
    )


def _customer_for_signup(*, email: str, first_name: str, last_name: str) -> tuple[Customer, bool]:
    def existing() -> Customer | None:
        return (
            Customer.objects.alias(email_lower=Lower("email"))
            .filter(email_lower=email.lower())
            .first()
        )

    customer = existing()
    if customer is not None:
        return customer, False
    try:
        with transaction.atomic():
            return customer_create(
                email=email,
                first_name=first_name,
                last_name=last_name,
                source=SIGNUP_SOURCE,
                by_the_person=True,
            ), True
    except (IntegrityError, ValidationError):  # the same address signed up at the same moment
        customer = existing()
        if customer is None:
            raise
        return customer, False


def signup_subscribe(
    *,
    email: str,
    purposes: dict[str, ConsentWording | None],
    first_name: str = "",
    last_name: str = "",
    ip_address: str | None = None,
    site_url: str = "",
    gpc: bool = False,
) -> SignupResult:
    """Match or create the person and record what they chose, by the rules of this module."""
    email = email.strip()
    unknown = sorted(set(purposes) - set(settings.PRIVACY_SIGNUP_PURPOSES))
    if unknown:
        raise ValueError(f"purposes: not offered on the signup page: {', '.join(unknown)}")
    with transaction.atomic():
        customer, created = _customer_for_signup(
            email=email, first_name=first_name.strip(), last_name=last_name.strip()
        )
        result = SignupResult(customer=customer, created=created)
        suppressed = suppression_contains(email=email)
        states = consent_state_for(customer=customer)
        wanted = [
            (code, wording or wording_current(code))
            for code, wording in purposes.items()
            if suppressed or states.get(code) != ConsentStatus.GRANTED
        ]
        if settings.PRIVACY_DOUBLE_OPT_IN or suppressed:
            sends_left = _within_limit(
                f"email:{email_hash(email)}",
                limit=settings.PRIVACY_SIGNUP_EMAILS_PER_DAY,
                seconds=24 * 3600,
            )
            if wanted and sends_left:
                consent_confirmations_request(
                    customer=customer,
                    purposes=wanted,
                    source=ConsentSource.FORM,
                    ip_address=ip_address,
                    site_url=site_url,
                )
                result.pending = [code for code, _ in wanted]
        else:
            for code, wording in wanted:
                consent_grant(
                    customer=customer,
                    purpose=code,
                    source=ConsentSource.FORM,
                    wording=wording,
                    ip_address=ip_address,
                    evidence=SIGNUP_EVIDENCE,
                )
                result.granted.append(code)
        if gpc:
            consent_gpc_honour(customer=customer, ip_address=ip_address)
    return result
