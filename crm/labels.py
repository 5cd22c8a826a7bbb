"""The words people read for the keys and codes the product stores: field names, sources,
audit details. Templates reach them through the `label` and `audit_details` filters."""

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

# Detail keys whose value is a customer id: shown as "customer #12".
_RECORD_KEYS = {"customer", "matched_customer", "merged_customer_id"}


def code_label(value: object) -> str:
    """The label of one key or code."""
    key = str(value)
    if key in LABELS:
        return LABELS[key]
    return key.replace("_", " ").strip().capitalize()


def _value_text(key: str, value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _RECORD_KEYS and isinstance(value, int):
        return f"customer #{value}"
    if isinstance(value, list | tuple):
        removed = sum(1 for v in value if v == "[removed]")
        named = [code_label(v).lower() if isinstance(v, str) else str(v) for v in value]
        named = [n for n, v in zip(named, value, strict=True) if v != "[removed]"]
        text = ", ".join(named)
        if removed:
            text = f"{text}{', ' if text else ''}{removed} not shown"
        return text or "none"
    if isinstance(value, str):
        return code_label(value) if key in ("status", "state", "type", "purpose") else value
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def audit_detail_pairs(details: dict | None) -> Iterable[tuple[str, str]]:
    """An audit entry's details as (label, readable value) pairs."""
    return [(code_label(key), _value_text(key, value)) for key, value in (details or {}).items()]
