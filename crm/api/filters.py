"""Filter backends shared by every app's API."""

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField, RangeField
from django_filters.widgets import DateRangeWidget
from rest_framework import filters
from rest_framework.exceptions import ValidationError


class StrictOrderingFilter(filters.OrderingFilter):
    """Ordering limited to the fields the viewset names (the indexed ones).

    An unknown field is a 400 naming it, rather than being ignored silently: a client that asks
    for an order it does not get would page through the data in an order it did not expect.
    """

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = [item[0] for item in self.get_valid_fields(queryset, view, {"request": request})]
        invalid = [term for term in fields if term.removeprefix("-") not in valid]
        if invalid:
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Cannot order by {', '.join(invalid)}; "
                        f"choose from {', '.join(sorted(valid))} (prefix - for descending)."
                    ]
                }
            )
        return fields


class IdFilter(django_filters.NumberFilter):
    """Rows pointing at one object, by its id: a whole number within the database's integer
    range; anything else is a 400 naming the filter rather than an error from the database."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC. PostgreSQL refuses offsets beyond ±15:59 and a time
    near year 1 or 9999 can leave the calendar when converted: both are a 400, not a 500."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(
                "Enter a time between the years 1 and 9999.", code="overflow"
            ) from None


class UtcIsoDateTimeRangeField(RangeField):
    widget = DateRangeWidget

    def __init__(self, *args, **kwargs):
        super().__init__((UtcIsoDateTimeField(), UtcIsoDateTimeField()), *args, **kwargs)


class IsoDateTimeFromToRangeFilter(django_filters.RangeFilter):
    """Rows whose time lies between `<name>_after` and `<name>_before` (ISO 8601, any offset)."""

    field_class = UtcIsoDateTimeRangeField
