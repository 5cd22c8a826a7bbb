"""Data exports for access and portability requests: one ZIP per person with a versioned JSON
document of everything across the registry, a CSV per table, and a readable summary."""

import csv
import io
import json
import uuid
import zipfile

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crm.spreadsheet import spreadsheet_safe
from customers.models import Customer
from privacy.audit import audit_record
from privacy.models import DataExport, DataSubjectRequest
from privacy.registry import personal_data_models

EXPORT_SCHEMA = "crm.personal-data-export"
EXPORT_SCHEMA_VERSION = 1
_LINK_SALT = "privacy.export-download"


def customer_export_document(*, customer_id: int) -> dict:
    """Everything every registered model holds on one customer, as one JSON-ready document."""
    tables = {}
    for entry in personal_data_models():
        rows = list(entry.rows_for(customer_id).order_by("pk").values(*entry.export_fields))
        tables[entry.label] = {
            "category": entry.category,
            "purpose": entry.purpose,
            "fields": list(entry.export_fields),
            "rows": rows,
        }
    return {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "generated_at": timezone.now(),
        "customer_id": customer_id,
        "tables": tables,
    }


def _csv_bytes(fields: list[str], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow(
            [
                spreadsheet_safe(
                    json.dumps(v, cls=DjangoJSONEncoder) if isinstance(v, dict | list) else v
                )
                for v in (row.get(f) for f in fields)
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _summary_text(document: dict) -> str:
    lines = [
        "Personal data export",
        "====================",
        "",
        f"Customer number: {document['customer_id']}",
        f"Generated at:    {document['generated_at']:%Y-%m-%d %H:%M %Z}",
        f"Format:          {EXPORT_SCHEMA} version {EXPORT_SCHEMA_VERSION} (data.json)",
        "",
        "The CSV files are for spreadsheets: a value starting with = + - or @ is written with",
        "an apostrophe before it, so that no spreadsheet runs it; data.json has every value",
        "exactly as we hold it.",
        "",
        "What we hold, by category:",
    ]
    for label, table in document["tables"].items():
        lines.append(
            f"- {table['category']}: {len(table['rows'])} record(s) ({label.replace('.', '_')}.csv)"
        )
        if table["purpose"]:
            lines.append(f"    used for: {table['purpose']}")
    profile = document["tables"].get("customers.customer", {}).get("rows", [])
    if profile:
        lines += ["", "Your profile:"]
        for key, value in profile[0].items():
            if value not in (None, "", {}, []):
                lines.append(f"  {key.replace('_', ' ')}: {value}")
    return "\n".join(lines) + "\n"


def data_export_build(*, export: DataExport) -> DataExport:
    """Build the ZIP for an export and store it privately (served only through a signed link)."""
    DataExport.objects.filter(pk=export.pk).update(
        status=DataExport.Status.RUNNING, started_at=timezone.now()
    )
    try:
        document = customer_export_document(customer_id=export.customer_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data.json", json.dumps(document, cls=DjangoJSONEncoder, indent=2))
            for label, table in document["tables"].items():
                archive.writestr(
                    f"{label.replace('.', '_')}.csv", _csv_bytes(table["fields"], table["rows"])
                )
            archive.writestr("summary.txt", _summary_text(document))
        export.file.save(f"{uuid.uuid4().hex}.zip", ContentFile(buffer.getvalue()), save=False)
        export.row_count = sum(len(t["rows"]) for t in document["tables"].values())
        export.status = DataExport.Status.DONE
    except Exception as exc:  # the officer sees why on the page instead of a stuck "running"
        export.status = DataExport.Status.FAILED
        export.message = f"{type(exc).__name__}: {exc}"[:500]
    export.finished_at = timezone.now()
    export.save(update_fields=["file", "row_count", "status", "message", "finished_at"])
    return export


def data_export_request(
    *, customer: Customer, actor: AbstractBaseUser | None, request: DataSubjectRequest | None = None
) -> DataExport:
    """Queue an export of one customer's data; the ZIP is built by a Celery task."""
    from privacy.tasks import data_export_build_task

    with transaction.atomic():
        export = DataExport.objects.create(
            customer=customer,
            request=request,
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_record(
            actor=actor,
            action="export",
            object_kind="customer",
            object_id=customer.pk,
            details={"export": export.pk, "request": request.pk if request else None},
        )
        transaction.on_commit(lambda: data_export_build_task.delay(export.pk))
    return export


def data_export_token(*, export: DataExport) -> str:
    return signing.dumps({"export": export.pk}, salt=_LINK_SALT)


def data_export_url(*, export: DataExport) -> str:
    """A download link that stops working after PRIVACY_EXPORT_LINK_MAX_AGE seconds."""
    return reverse("privacy:export_download", args=[data_export_token(export=export)])


def data_export_from_token(token: str) -> DataExport | None:
    """The export a download token points at; raises signing.BadSignature (or SignatureExpired)."""
    payload = signing.loads(token, salt=_LINK_SALT, max_age=settings.PRIVACY_EXPORT_LINK_MAX_AGE)
    return DataExport.objects.filter(
        pk=payload.get("export"), status=DataExport.Status.DONE
    ).first()


def data_export_downloaded(*, export: DataExport, actor: AbstractBaseUser) -> None:
    audit_record(
        actor=actor,
        action="download",
        object_kind="customer",
        object_id=export.customer_id,
        details={"export": export.pk},
    )
