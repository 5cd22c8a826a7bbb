"""What a merge confirmation shows: the two customers side by side, and what stays."""

from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from crm.confirm import Confirmation
from crm.templatetags.numbers import count, money
from customers.models import Customer
from customers.selectors import customer_fields_hidden_from

COMPARED_FIELDS = [
    ("full_name", "Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("account", "Account"),
    ("owner", "Owner"),
    ("city", "City"),
    ("country", "Country"),
    ("purchase_count", "Purchases"),
    ("lifetime_value", "Lifetime value"),
    ("created_at", "Created"),
]


def _shown(customer: Customer, name: str) -> str:
    value = getattr(customer, name)
    if value is None or value == "":
        return ""
    if name == "owner":
        return value.get_full_name() or value.get_username()
    if name == "lifetime_value":
        return money(value)
    if name == "purchase_count":
        return count(value)
    if name == "created_at":
        return f"{value:%d %b %Y}"
    return str(value)


def merge_confirmation(
    *, target: Customer, duplicate: Customer, user: AbstractBaseUser
) -> Confirmation:
    """The duplicate next to the customer it merges into, with the fields the user may read."""
    hidden = customer_fields_hidden_from(user)
    rows = [
        (label, _shown(target, name), _shown(duplicate, name))
        for name, label in COMPARED_FIELDS
        if name not in hidden and not (name == "full_name" and {"first_name", "last_name"} & hidden)
    ]
    return Confirmation(
        title=f"Merge {duplicate} into {target}?",
        action_label="Merge and remove the duplicate",
        compare_heads=[
            "",
            f"Keeps: {target} (#{target.pk})",
            f"Removed: {duplicate} (#{duplicate.pk})",
        ],
        compare_rows=rows,
        warning="The duplicate's purchases, events, notes, tags and consent records move over; "
        "blank fields are filled from it, and then it is removed. This cannot be undone.",
        cancel_url=reverse("customers:customer_merge", args=[target.pk]),
    )
