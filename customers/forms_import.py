"""The upload form of the import page."""

from django import forms
from django.core.exceptions import ValidationError

from customers.importing import CUSTOMER_FIELDS, PURCHASE_FIELDS, ImportFileError, column_map_parse
from customers.importing.jobs import import_header_check
from customers.models import ImportJob


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(
        choices=ImportJob.Kind.choices, widget=forms.RadioSelect, initial=ImportJob.Kind.CUSTOMERS
    )
    file = forms.FileField(help_text="CSV, UTF-8 (with or without BOM), with a header row.")
    column_map = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "email=E-Mail\nfirst_name=Vorname"}),
        help_text="Optional: one FIELD=COLUMN per line, for columns named differently from the fields.",
    )
    date_format = forms.CharField(
        required=False,
        max_length=50,
        help_text="Optional strptime format such as %d/%m/%Y; by default ISO 8601 or YYYYMMDD.",
    )
    create_customers = forms.BooleanField(
        required=False,
        help_text="Purchases only: create a customer for an unknown customer_external_id.",
    )
    strict_duplicates = forms.BooleanField(
        required=False,
        help_text="Purchases only: refuse a line without an order number that repeats an "
        "earlier line of the same customer exactly. By default each such line is a purchase "
        "of its own.",
    )

    field_names = {
        ImportJob.Kind.CUSTOMERS: ", ".join(CUSTOMER_FIELDS) + ", attr.<key>",
        ImportJob.Kind.PURCHASES: ", ".join(PURCHASE_FIELDS),
    }

    def clean_column_map(self) -> dict[str, str]:
        try:
            return column_map_parse(self.cleaned_data["column_map"])
        except ImportFileError as exc:
            raise ValidationError(str(exc)) from None

    def clean_date_format(self) -> str:
        value = self.cleaned_data["date_format"].strip()
        if value and "%" not in value:
            raise ValidationError("A date format needs strptime codes such as %d, %m and %Y.")
        return value

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if upload is None or "column_map" not in data or "kind" not in data:
            return data
        if not upload.size:
            self.add_error("file", "The file is empty.")
            return data
        try:
            upload.seek(0)
            import_header_check(kind=data["kind"], stream=upload, column_map=data["column_map"])
        except ImportFileError as exc:
            self.add_error(
                "file" if "header" in str(exc) or "file" in str(exc) else "column_map", str(exc)
            )
        finally:
            upload.seek(0)
        return data
