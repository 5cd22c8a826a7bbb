"""Filters of the customers API (django-filter). Ranges take `<field>_after` / `<field>_before`
(dates and times) or `<field>_min` / `<field>_max` (numbers)."""

import django_filters as filters

from crm.api.filters import IdFilter, IsoDateTimeFromToRangeFilter
from customers.models import Account, Customer, Event, Note, Product, Purchase


class TagFilter(filters.CharFilter):
    """Records carrying a tag, by name, regardless of case."""

    def __init__(self, **kwargs):
        kwargs.setdefault("field_name", "tags__name")
        kwargs.setdefault("lookup_expr", "iexact")
        kwargs.setdefault("distinct", True)
        super().__init__(**kwargs)


class AccountFilter(filters.FilterSet):
    country = filters.CharFilter(lookup_expr="iexact")
    city = filters.CharFilter(lookup_expr="iexact")
    industry = filters.CharFilter(lookup_expr="iexact")
    owner = IdFilter(field_name="owner_id")
    tag = TagFilter()
    created_at = IsoDateTimeFromToRangeFilter()
    updated_at = IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Account
        fields = ["kind", "size"]


class CustomerFilter(filters.FilterSet):
    country = filters.CharFilter(lookup_expr="iexact")
    region = filters.CharFilter(lookup_expr="iexact")
    city = filters.CharFilter(lookup_expr="iexact")
    postal_code = filters.CharFilter()
    language = filters.CharFilter(lookup_expr="iexact")
    email = filters.CharFilter(lookup_expr="iexact")
    external_id = filters.CharFilter()
    source = filters.CharFilter()
    owner = IdFilter(field_name="owner_id")
    account = IdFilter(field_name="account_id")
    tag = TagFilter()
    birth_date = filters.DateFromToRangeFilter()
    created_at = IsoDateTimeFromToRangeFilter()
    updated_at = IsoDateTimeFromToRangeFilter()
    first_purchase_at = IsoDateTimeFromToRangeFilter()
    last_purchase_at = IsoDateTimeFromToRangeFilter()
    lifetime_value = filters.RangeFilter()
    purchase_count = filters.RangeFilter()

    class Meta:
        model = Customer
        fields = ["gender", "income_band"]


class ProductFilter(filters.FilterSet):
    category = filters.CharFilter(lookup_expr="iexact")
    sku = filters.CharFilter()
    price = filters.RangeFilter()

    class Meta:
        model = Product
        fields = []


class PurchaseFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    product = IdFilter(field_name="product_id")
    external_id = filters.CharFilter()
    category = filters.CharFilter()
    currency = filters.CharFilter(lookup_expr="iexact")
    promotion_code = filters.CharFilter()
    purchased_at = IsoDateTimeFromToRangeFilter()
    amount = filters.RangeFilter()

    class Meta:
        model = Purchase
        fields = ["channel"]


class EventFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    type = filters.CharFilter()
    occurred_at = IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Event
        fields = []


class NoteFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    account = IdFilter(field_name="account_id")
    author = IdFilter(field_name="author_id")
    due_date = filters.DateFromToRangeFilter()
    created_at = IsoDateTimeFromToRangeFilter()

    class Meta:
        model = Note
        fields = ["kind", "done"]
