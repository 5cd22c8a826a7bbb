"""Filter backends shared by every app's API."""

import django_filters
from django import forms
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
