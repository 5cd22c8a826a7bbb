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
