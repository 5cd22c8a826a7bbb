"""Customer and account search and the customer list's sort orders: index-friendly prefix
conditions any page or API that finds customers by a typed term uses (the customer and account
lists, the global search, the campaign preview picker)."""

from collections.abc import Collection
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from customers.models import Customer
from customers.views.pagination import KeysetOrder

CUSTOMER_ORDERS = {
    "name": KeysetOrder(("last_name", "first_name", "id")),
    "-name": KeysetOrder(("last_name", "first_name", "id"), descending=True),
    "-lifetime_value": KeysetOrder(("lifetime_value", "id"), descending=True),
    "lifetime_value": KeysetOrder(("lifetime_value", "id")),
    "-last_purchase_at": KeysetOrder(("last_purchase_at", "id"), descending=True, nullable=True),
    "last_purchase_at": KeysetOrder(("last_purchase_at", "id"), nullable=True),
}
ACCOUNT_ORDER = KeysetOrder(("name", "id"))
ACCOUNT_ORDERS = {"name": ACCOUNT_ORDER, "-name": KeysetOrder(("name", "id"), descending=True)}


def _case_variants(term: str) -> set[str]:
    return {term, term.lower(), term.capitalize(), term.title(), term.upper()}


def searchable(term: str) -> str:
    """A typed term as text the database can compare: without NUL characters (PostgreSQL
    refuses them, and no stored text holds one) and without lone surrogates, which no request
    yields but a forged one might."""
    return term.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8").strip()


def prefix_q(field: str, prefix: str) -> Q:
    """`field` starts with `prefix`, written as a range (prefix <= field < next prefix) that a
    b-tree index serves under any collation, plus the LIKE that keeps it exact. PostgreSQL uses
    an index for a bare LIKE 'x%' only under the "C" collation or with pattern_ops indexes."""
    bound = {f"{field}__gte": prefix, f"{field}__startswith": prefix}
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are no characters: skip them
        following = 0xE000
    if following <= 0x10FFFF:  # past the last code point there is no upper end
        bound[f"{field}__lt"] = prefix[:-1] + chr(following)
    return Q(**bound)


def customer_search_conditions(term: str, *, unreadable: Collection[str]) -> list[Q]:
    """Index-friendly search, one condition per index range: prefixes of last name (first name
    with a second word), email, phone and external id, leaving out the fields in `unreadable`
    (those the user may not read, customers.selectors.customer_fields_hidden_from: a marketer
    finds nobody by phone number). Prefix ranges use the b-tree indexes; a contains-match would
    read every row of a million-customer table. The conditions need the `email_lower` alias (see
    `customers_search`)."""
    term = searchable(term)
    if not term:
        return []
    conditions: list[tuple[str, Q]] = [
        ("external_id", Q(external_id=term)),
        ("email", prefix_q("email_lower", term.lower())),
    ]
    if any(ch.isdigit() for ch in term):
        conditions.append(("phone", prefix_q("phone", term)))
        conditions.append(("external_id", prefix_q("external_id", term)))
    words = term.split()
    if len(words) >= 2:
        first, last = " ".join(words[:-1]), words[-1]
        for f in sorted(_case_variants(first)):
            for lv in sorted(_case_variants(last)):
                conditions.append(
                    ("last_name", prefix_q("last_name", lv) & Q(first_name__startswith=f))
                )
    conditions += [
        ("last_name", prefix_q("last_name", variant)) for variant in sorted(_case_variants(term))
    ]
    return [condition for field, condition in conditions if field not in unreadable]


def customer_search_q(term: str, *, unreadable: Collection[str]) -> Q:
    """A customer matches the search when any of its conditions holds."""
    return reduce(or_, customer_search_conditions(term, unreadable=unreadable), Q())


def customers_search_ready(queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    """`queryset` with the lower-cased email the search conditions compare with."""
    return queryset.alias(email_lower=Lower("email"))


def customers_search(
    queryset: QuerySet[Customer], term: str, *, unreadable: Collection[str]
) -> QuerySet[Customer]:
    if not term.strip():
        return queryset
    conditions = customer_search_conditions(term, unreadable=unreadable)
    if not conditions:
        return queryset.none()
    return customers_search_ready(queryset).filter(reduce(or_, conditions))


def account_search_q(term: str) -> Q:
    condition = Q()
    for variant in _case_variants(searchable(term)):
        if variant:
            condition |= prefix_q("name", variant)
    return condition
