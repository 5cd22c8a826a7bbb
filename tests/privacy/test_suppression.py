import datetime as dt
import importlib
import io
import os

import pytest
from django.apps import apps
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from customers.importing import customers_import
from customers.models import Customer
from privacy.erasure import customer_erase
from privacy.models import ErasureLog, Suppression
from privacy.selectors import customers_eligible_for
from privacy.services import (
    consent_confirm,
    consent_grant,
    consent_unsubscribe_all,
    consent_withdraw,
)
from privacy.signup import signup_subscribe
from privacy.suppression import (
    email_hash,
    phone_hash,
    suppression_add,
    suppression_contains,
    suppression_exclude,
)
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

EMAILS = ["ann@example.com", "bob@example.com", "cy@example.com"]
SIGNUP_WITHOUT_DOUBLE_OPT_IN = {"PRIVACY_DOUBLE_OPT_IN": False, "PRIVACY_SIGNUP_EMAILS_PER_DAY": 0}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("import"), st.sampled_from(EMAILS), st.booleans()),
        st.tuples(
            st.just("grant"), st.sampled_from(EMAILS), st.sampled_from(["staff", "api", "import"])
        ),
        st.tuples(st.just("withdraw"), st.sampled_from(EMAILS), st.just("staff")),
        st.tuples(st.just("erase"), st.sampled_from(EMAILS), st.just("")),
        st.tuples(st.just("unsubscribe"), st.sampled_from(EMAILS), st.just("")),
        # The public signup page (without double opt-in) and the emailed confirmation link.
        st.tuples(st.just("signup"), st.sampled_from(EMAILS), st.just("")),
        st.tuples(st.just("confirm"), st.sampled_from(EMAILS), st.just("")),
    ),
    max_size=12,
)


def _import(email: str) -> Customer | None:
    csv = f"email,first_name,last_name\n{email.upper()},Re,Imported\n".encode()
    customers_import(stream=io.BytesIO(csv))
    return Customer.objects.filter(email__iexact=email).first()


class _Rollback(Exception):
    pass


@settings(
    max_examples=int(os.environ.get("SUPPRESSION_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
# Unsubscribed, then erased: the erasure must still refuse the address to a file (found once).
@example(
    ops=[
        ("import", "ann@example.com", False),
        ("unsubscribe", "ann@example.com", ""),
        ("erase", "ann@example.com", ""),
        ("import", "ann@example.com", False),
    ]
)
def test_a_suppressed_address_imported_again_never_becomes_eligible_for_a_campaign(ops):
    cache.clear()  # the signup limits count in the cache
    try:
        with transaction.atomic(), override_settings(**SIGNUP_WITHOUT_DOUBLE_OPT_IN):
            present: set[str] = set()
            consent: set[str] = set()
            suppressed: set[str] = set()
            erased: set[str] = set()  # a file may not bring these people back
            for op, email, arg in ops:
                customer = Customer.objects.filter(email__iexact=email).first()
                if op == "signup":
                    signup_subscribe(email=email.title(), purposes={"email_marketing": None})
                    present.add(email)
                    if email not in suppressed:  # a suppressed address must confirm first
                        consent.add(email)
                elif op == "import":
                    existed = customer is not None
                    customer = _import(email)
                    assert (customer is None) == (not existed and email in erased), ops
                    if customer is None:
                        continue
                    present.add(email)
                    if arg:  # the file says the person opted in
                        consent_grant(customer=customer, purpose="email_marketing", source="import")
                        consent.add(email)
                elif customer is None:
                    continue
                elif op == "confirm":
                    pending = customer.pending_consents.filter(record__isnull=True).last()
                    if pending is not None:
                        consent_confirm(pending=pending)
                        consent.add(email)
                        suppressed.discard(email)
                        erased.discard(email)
                elif op == "grant":
                    consent_grant(customer=customer, purpose="email_marketing", source=arg)
                    consent.add(email)
                elif op == "withdraw":
                    consent_withdraw(customer=customer, purpose="email_marketing", source=arg)
                    consent.discard(email)
                elif op == "erase":
                    customer_erase(customer=customer)
                    present.discard(email)
                    consent.discard(email)
                    suppressed.add(email)
                    erased.add(email)
                elif op == "unsubscribe":
                    consent_unsubscribe_all(customer=customer)
                    consent.discard(email)
                    suppressed.add(email)

                eligible = {
                    e.lower()
                    for e in customers_eligible_for("email_marketing").values_list(
                        "email", flat=True
                    )
                }
                assert not eligible & suppressed
                assert eligible == (present & consent) - suppressed
            raise _Rollback
    except _Rollback:
        pass


def test_a_person_who_unsubscribed_and_was_then_erased_is_not_recreated_by_an_import():
    customer = _import("ann@example.com")
    consent_unsubscribe_all(customer=customer)

    customer_erase(customer=customer)

    assert _import("ann@example.com") is None
    assert set(Suppression.objects.values_list("reason", flat=True)) == {Suppression.Reason.ERASURE}


def test_an_unsubscribe_after_an_erasure_does_not_weaken_the_erasure():
    suppression_add(reason=Suppression.Reason.ERASURE, email="ann@example.com")

    added = suppression_add(reason=Suppression.Reason.UNSUBSCRIBE, email="Ann@Example.com")

    assert added == 0
    assert Suppression.objects.get().reason == Suppression.Reason.ERASURE


def test_the_migration_turns_suppressions_an_erasure_left_as_unsubscribes_into_erasures():
    migration = importlib.import_module("privacy.migrations.0005_suppression_erasure_reason")
    now = timezone.now()
    suppression_add(reason=Suppression.Reason.UNSUBSCRIBE, email="ann@example.com", phone="0301")
    suppression_add(reason=Suppression.Reason.UNSUBSCRIBE, email="bob@example.com")
    Suppression.objects.update(created_at=now - dt.timedelta(days=2))
    ErasureLog.objects.create(
        customer_id=1,
        email_hash=email_hash("ann@example.com"),
        phone_hash=phone_hash("0301"),
        reason=Suppression.Reason.ERASURE,
        erased_at=now - dt.timedelta(days=1),
    )
    # Bob was erased, lifted the suppression himself, then unsubscribed again.
    ErasureLog.objects.create(
        customer_id=2,
        email_hash=email_hash("bob@example.com"),
        reason=Suppression.Reason.ERASURE,
        erased_at=now - dt.timedelta(days=3),
    )

    migration.erasures_restore(apps, None)

    reasons = {(s.kind, s.value_hash): s.reason for s in Suppression.objects.all()}
    assert reasons == {
        ("email", email_hash("ann@example.com")): Suppression.Reason.ERASURE,
        ("phone", phone_hash("0301")): Suppression.Reason.ERASURE,
        ("email", email_hash("bob@example.com")): Suppression.Reason.UNSUBSCRIBE,
    }


def test_suppression_exclude_filters_customers_set_based_by_email_or_phone(
    django_assert_num_queries,
):
    kept = CustomerFactory(email="kept@example.com", phone="+1 555 0100")
    by_email = CustomerFactory(email="Gone@Example.com ", phone="")
    by_phone = CustomerFactory(email="other@example.com", phone="+1 (555) 0199")
    suppression_add(reason="erasure", email="gone@example.com")
    suppression_add(reason="erasure", phone="+15550199")

    with django_assert_num_queries(1):
        remaining = set(suppression_exclude(Customer.objects.all()).values_list("pk", flat=True))

    assert kept.pk in remaining
    assert by_email.pk not in remaining and by_phone.pk not in remaining


def test_suppression_contains_normalises_case_spaces_and_phone_punctuation():
    suppression_add(reason="unsubscribe", email=" Ann@Example.com", phone="+44 20-7946 0018")

    assert suppression_contains(email="ann@example.com")
    assert suppression_contains(phone="+44 (20) 7946.0018")
    assert not suppression_contains(email="bob@example.com", phone="+44 20 7946 0019")
