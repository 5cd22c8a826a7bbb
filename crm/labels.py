"""The words people read for the keys and codes the product stores: field names, sources,
audit details. Templates reach them through the `label` and `audit_details` filters."""

import re
from collections.abc import Iterable

# Codes whose generic form ("job_title" -> "Job title") would read wrongly or too technically.
LABELS: dict[str, str] = {
    "web_form": "Web form",
    "api": "API",
    "csv": "CSV import",
    "gdpr": "GDPR",
    "ccpa": "CCPA",
    "dsr": "Data-subject request",
    "data_request": "Data-subject request",
    "consent_wording": "Consent wording",
    "bulk_consent_job": "Bulk consent change",
    "preference_link": "Preference-centre link",
    "email_marketing": "Email marketing",
    "sms_marketing": "SMS marketing",
    "data_sale": "Sale of data",
    "churn_risk": "Churn risk",
    "clv": "Lifetime value",
    "lifetime_value": "Lifetime value",
    "rfm_class": "RFM class",
    "ml_cluster": "ML cluster",
    "external_id": "External ID",
    "merged_customer_id": "Merged customer",
    "matched_customer": "Matched to customer",
    "import_files": "Import files",
    "in_progress": "In progress",
    "do_not_sell": "Do not sell",
    "segment": "Segment",
    "customers": "Customers",
    "fields": "Fields",
}

# A stored code or key: lower-case letters, digits, underscores and dots ("job_title", "web_form").
_CODE = re.compile(r"[a-z][a-z0-9_.]*")

# Detail keys whose text value is a stored code, shown by its label.
_CODE_KEYS = {"status", "state", "type", "purpose", "as", "source", "kind", "trigger", "reason",
              "action"}  # fmt: skip

# Detail keys whose value is a customer id: shown as "customer #12".
_RECORD_KEYS = {"customer", "matched_customer", "merged_customer_id"}


def code_label(value: object) -> str:
    """The label of one key or code."""
    key = str(value)
    if key in LABELS:
        return LABELS[key]
    if not _CODE.fullmatch(key):
        return key  # already words (a source typed by a person, "Trade fair"): as written
    words = key.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:]


# Detail keys whose value is the id of a record of that kind, named where the caller knows it.
RECORD_KINDS = {
    "customer": "customer",
    "matched_customer": "customer",
    "merged_customer_id": "customer",
    "segment": "segment",
    "campaign": "campaign",
}


def _value_text(key: str, value: object, names: dict[str, dict[int, str]] | None = None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    kind = RECORD_KINDS.get(key)
    if kind and isinstance(value, int) and (name := (names or {}).get(kind, {}).get(value)):
        return f"{name} (#{value})"
    if key in _RECORD_KEYS and isinstance(value, int):
        return f"customer #{value}"
    if kind and isinstance(value, int):
        return f"{kind} #{value}"
    if isinstance(value, list | tuple):
        removed = sum(1 for v in value if v == "[removed]")
        named = [code_label(v).lower() if isinstance(v, str) else str(v) for v in value]
        named = [n for n, v in zip(named, value, strict=True) if v != "[removed]"]
        text = ", ".join(named)
        if removed:
            text = f"{text}{', ' if text else ''}{removed} not shown"
        return text or "none"
    if isinstance(value, str):
        return code_label(value) if key in _CODE_KEYS else value
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def audit_detail_pairs(
    details: dict | None, names: dict[str, dict[int, str]] | None = None
) -> Iterable[tuple[str, str]]:
    """An audit entry's details as (label, readable value) pairs; record ids by name where
    `names` ({kind: {id: name}}) has them."""
    return [
        (code_label(key), _value_text(key, value, names)) for key, value in (details or {}).items()
    ]


def audit_record_refs(entries: Iterable) -> dict[str, set[int]]:
    """The ids of the records some audit entries refer to (their object, their details), by kind."""
    refs: dict[str, set[int]] = {}
    for entry in entries:
        if entry.object_id is not None:
            refs.setdefault(entry.object_kind, set()).add(entry.object_id)
        for key, value in (entry.details or {}).items():
            if key in RECORD_KINDS and isinstance(value, int) and not isinstance(value, bool):
                refs.setdefault(RECORD_KINDS[key], set()).add(value)
    return refs
