"""The record picker rendered inside the page's own context (crm/_field.html), so its search box
carries the page's htmx key like every other element the product makes live."""

from django import template
from django.forms import BoundField

from crm.forms import RecordPicker

register = template.Library()


@register.filter
def is_picker(field: BoundField) -> bool:
    return isinstance(field.field.widget, RecordPicker)


@register.filter
def picker_widget(field: BoundField) -> dict:
    """The picker's context for crm/_picker_widget.html, with the ids and the aria-describedby
    Django gives any other control of the field."""
    attrs = field.build_widget_attrs({"id": field.auto_id} if field.auto_id else {})
    if field.errors:
        attrs["aria-invalid"] = "true"
    return field.field.widget.get_context(field.html_name, field.value(), attrs)["widget"]
