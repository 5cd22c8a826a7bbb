"""factory-boy factories for customer data."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from customers.models import Account, Customer, Event, Note, Product, Purchase


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    kind = Account.Kind.COMPANY
    industry = "Retail"
    country = "DE"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    external_id = factory.Sequence(lambda n: f"C{n:06d}")
    country = "DE"
    city = "Berlin"
    language = "de"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    category = "shoes"
    price = Decimal("49.90")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    customer = factory.SubFactory(CustomerFactory)
    dedup_key = factory.Sequence(lambda n: f"test:{n}")
    purchased_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    amount = Decimal("100.00")
    currency = "EUR"
    quantity = 1
    channel = Purchase.Channel.ONLINE
    category = "shoes"


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = "page_view"
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(dict)


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Note

    customer = factory.SubFactory(CustomerFactory)
    body = "Called about the spring collection."
