"""Form fields shared by the apps' web forms."""

from django import forms
from django.core.exceptions import ValidationError


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Django's field, with an id too large for the database's integers refused as an invalid
    choice (a lookup with it overflows, and the page failed with a server error)."""

    def _check_values(self, value):
        try:
            return super()._check_values(value)
        except OverflowError:
            too_large = next((v for v in value if _too_large(v)), value)
            raise ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": too_large},
            ) from None


def _too_large(value) -> bool:
    try:
        return abs(int(value)) >= 2**63
    except (TypeError, ValueError):
        return False


class RecordPicker(forms.Widget):
    """Pick a record by typing part of its name: a search box (an ARIA combobox) whose options
    come from an htmx search endpoint that applies the same selectors and role rules as the
    lists, and a hidden input holding the chosen record's id, which is what the form (like the
    API) receives. `label_for(value)` names the chosen record when the form is shown again."""

    template_name = "crm/_picker_widget.html"

    def __init__(self, *, url: str, label_for=None, placeholder: str = "Type a name or email…",
                 attrs=None):  # fmt: skip
        super().__init__(attrs)
        self.url = url
        self.label_for = label_for
        self.placeholder = placeholder

    def id_for_label(self, id_):
        return f"{id_}_search" if id_ else id_

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        widget_id = widget["attrs"].get("id") or f"id_{name}"
        shown = ""
        if value not in (None, "") and self.label_for is not None:
            try:
                shown = self.label_for(int(value)) or ""
            except (TypeError, ValueError, OverflowError):
                shown = ""
        widget["id"] = widget_id
        widget["url"] = str(self.url)
        widget["shown"] = shown
        widget["placeholder"] = self.placeholder
        widget["described_by"] = widget["attrs"].get("aria-describedby", "")
        widget["invalid"] = widget["attrs"].get("aria-invalid", "")
        return context
