"""Filter backends shared by every app's API."""

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField, RangeField
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import DateRangeWidget
from rest_framework import filters
from rest_framework.exceptions import ValidationError


def fields_hidden(view, request) -> frozenset[str]:
    """The fields of the view's records the user may not read (the view's `fields_hidden`)."""
    hidden = getattr(view, "fields_hidden", None)
    return frozenset(hidden()) if hidden is not None else frozenset()


def _root(path: str) -> str:
    """The field a lookup path starts from: `birth_date__gte` reads `birth_date`."""
    return path.lstrip("^=@$-").split("__")[0]


def refusal(name: str) -> str:
    return f"Your role may not read {name.replace('_', ' ')}: it cannot be used here."


class ReadableFieldsFilterBackend(DjangoFilterBackend):
    """django-filter, except that a filter on a field the user may not read is a 400 naming the
    parameter: never applied (a range filter bisected a hidden birth date in 16 requests) and
    never ignored silently (the client would read an unfiltered list as a filtered one)."""

    def filter_queryset(self, request, queryset, view):
        hidden = fields_hidden(view, request)
        filterset_class = self.get_filterset_class(view, queryset) if hidden else None
        refused = {}
        if filterset_class is not None:
            # Filters whose names differ from the field they read (none today) ...
            for name, spec in filterset_class.base_filters.items():
                if _root(spec.field_name or name) in hidden:
                    hidden = hidden | {name}
        for param in request.query_params:
            # ... and every parameter named after a hidden field, offered as a filter or not:
            # a range filter `birth_date` reads birth_date_after, birth_date_before.
            for name in hidden:
                if param == name or param.startswith((f"{name}_", f"{name}__")):
                    refused[param] = [refusal(name)]
        if refused:
            raise ValidationError(refused)
        return super().filter_queryset(request, queryset, view)


class ReadableFieldsSearchFilter(filters.SearchFilter):
    """Search over the view's search fields, leaving out those the user may not read: a term
    typed in the search box never matches on a field the user could not see."""

    def get_search_fields(self, view, request):
        fields = super().get_search_fields(view, request) or []
        hidden = fields_hidden(view, request)
        return [field for field in fields if _root(field) not in hidden]


class StrictOrderingFilter(filters.OrderingFilter):
    """Ordering limited to the fields the viewset names (the indexed ones).

    An unknown field is a 400 naming it, rather than being ignored silently: a client that asks
    for an order it does not get would page through the data in an order it did not expect.
    A field the user may not read is refused the same way (the order of the rows would reveal
    it), even where the viewset offers it to others.
    """

    def get_valid_fields(self, queryset, view, context=None):
        valid = super().get_valid_fields(queryset, view, context or {})
        request = (context or {}).get("request")
        hidden = fields_hidden(view, request) if request is not None else frozenset()
        return [item for item in valid if _root(item[0]) not in hidden]

    def remove_invalid_fields(self, queryset, fields, view, request):
        hidden = fields_hidden(view, request)
        refused = sorted({_root(term) for term in fields if _root(term) in hidden})
        if refused:
            raise ValidationError({self.ordering_param: [refusal(name) for name in refused]})
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
