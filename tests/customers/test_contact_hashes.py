"""Every write path keeps a customer's stored email and phone hashes equal to the hashes of the
address the row holds, so the suppression list can be checked with a join."""

import io

import pytest
from django.core.management import call_command
from django.db.models import F

from customers.contact_hashes import contact_hashes, contact_hashes_refresh, email_hash, phone_hash
from customers.importing import customers_import, purchases_import
from customers.models import Customer
from customers.services import customer_create, customer_merge, customer_update
from privacy.erasure import customer_erase
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _stale() -> list[tuple[int, str | None, str]]:
    """Customers whose stored hashes are not the hashes of their address."""
    return [
        (c.pk, c.email, c.phone)
        for c in Customer.objects.all()
        if (c.email_hash, c.phone_hash)
        != tuple(contact_hashes(email=c.email, phone=c.phone).values())
    ]


def test_a_customer_saved_through_the_service_carries_the_hashes_of_its_address(superuser):
    customer = customer_create(actor=superuser, email="Ann@Example.com", phone="+44 20 7946 0018")

    assert customer.email_hash == email_hash("ann@example.com")
    assert customer.phone_hash == phone_hash("+44 20 7946 0018")
    customer_update(customer=customer, actor=superuser, email="ann.new@example.com", phone="")
    customer.refresh_from_db()
    assert customer.email_hash == email_hash("ann.new@example.com")
    assert customer.phone_hash == ""


def test_a_merge_that_fills_the_email_keeps_the_hash_in_step(superuser):
    target = CustomerFactory(email=None, phone="")
    duplicate = CustomerFactory(email="dup@example.com", phone="030 1234")
    duplicate_email, duplicate_phone = duplicate.email, duplicate.phone

    customer_merge(target=target, duplicate=duplicate, actor=superuser)

    target.refresh_from_db()
    assert target.email == duplicate_email
    assert target.email_hash == email_hash(duplicate_email)
    assert target.phone_hash == phone_hash(duplicate_phone)


def test_imported_customers_new_and_updated_carry_the_hashes_of_their_address():
    CustomerFactory(external_id="K1", email="kept@example.com", phone="")
    csv = (
        b"external_id,email,phone\n"
        b"K1,,+1 (555) 0100\n"  # an empty cell keeps the email, the new phone is hashed
        b"K2,New@Example.com,\n"
        b",only.email@example.com,0049 30 5550199\n"
    )

    customers_import(stream=io.BytesIO(csv))

    assert Customer.objects.count() == 3
    assert _stale() == []
    assert Customer.objects.get(external_id="K1").phone_hash == phone_hash("+1 (555) 0100")


def test_customers_created_by_a_purchase_import_carry_the_hash_of_their_email(sales_user):
    csv = b"customer_email,purchased_at,amount\nBuyer@Example.com,2024-01-01,5\n"

    result = purchases_import(stream=io.BytesIO(csv), create_customers=True, user=sales_user)

    assert result.customers_created == 1
    customer = Customer.objects.get(email__iexact="buyer@example.com")
    assert customer.email_hash == email_hash("buyer@example.com")
    assert _stale() == []


def test_hashes_computed_by_the_database_equal_the_hashes_computed_in_python():
    CustomerFactory(email=" Mixed.Case@Example.COM", phone="+44 (20) 7946-0018")
    CustomerFactory(email=None, phone="  ")
    CustomerFactory(email="plain@example.com", phone="")
    Customer.objects.update(email_hash="stale", phone_hash="stale")

    contact_hashes_refresh(Customer.objects.all())

    assert _stale() == []
    assert not Customer.objects.filter(email_hash=F("phone_hash")).exclude(email_hash="").exists()


def test_an_erased_customer_keeps_no_hash_of_its_former_address():
    customer = CustomerFactory(email="gone@example.com", phone="+49 30 1")

    customer_erase(customer=customer)

    customer.refresh_from_db()
    assert (customer.email_hash, customer.phone_hash) == ("", "")


def test_the_command_recomputes_the_hashes_after_a_change_of_salt(settings):
    customer = CustomerFactory(email="salted@example.com", phone="")
    settings.PRIVACY_HASH_SALT = "a-new-salt"
    out = io.StringIO()

    call_command("refresh_contact_hashes", stdout=out)

    customer.refresh_from_db()
    assert customer.email_hash == email_hash("salted@example.com")  # with the new salt
    assert "Recomputed" in out.getvalue()
