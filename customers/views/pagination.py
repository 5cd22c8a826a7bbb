"""Keyset pagination: the next page starts after the last row's sort key, so a deep page costs
the same as the first one (an index range scan), unlike OFFSET which reads every skipped row."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Model, Q, QuerySet

from crm.text import text_problem


@dataclass(frozen=True)
class KeysetOrder:
    """An ordering whose columns end in the primary key and match an index.

    `nullable` says the leading column may be NULL: those rows come last whatever the direction,
    read in a second phase ordered by id, so both phases still follow an index.
    """

    fields: tuple[str, ...]  # e.g. ("lifetime_value", "id")
    descending: bool = False
    nullable: bool = False

    @property
    def lead(self) -> str:
        return self.fields[0]

    def order_by(self) -> list[str]:
        sign = "-" if self.descending else ""
        return [f"{sign}{f}" for f in self.fields]

    def after(self, key: tuple) -> Q:
        """Rows strictly after `key`: a range on the lead column (for the index) and the tie-breaks."""
        cmp = "lt" if self.descending else "gt"
        cmp_eq = "lte" if self.descending else "gte"
        alternatives = []
        for i, name in enumerate(self.fields):
            equal = {f: key[j] for j, f in enumerate(self.fields[:i])}
            alternatives.append(Q(**equal, **{f"{name}__{cmp}": key[i]}))
        return Q(**{f"{self.lead}__{cmp_eq}": key[0]}) & reduce(or_, alternatives)


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    is_first: bool


def cursor_encode(values: list) -> str:
    raw = json.dumps([None if v is None else str(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, model: type[Model], order: KeysetOrder) -> tuple | None:
    """The key in a cursor, converted to the fields' types; None for a missing or forged cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(order.fields):
            return None
        key = []
        for name, value in zip(order.fields, values, strict=True):
            if value is None:
                if name != order.lead or not order.nullable:
                    return None
                key.append(None)
            else:
                if isinstance(value, str) and text_problem(value):
                    return None  # no stored text is like that: the cursor is forged
                key.append(model._meta.get_field(name).to_python(value))
        return tuple(key)
    except (binascii.Error, ValueError, TypeError, ValidationError):
        return None


def _first_rows(queryset: QuerySet, any_of: Sequence[Q], limit: int) -> list:
    """The first `limit` rows of the ordered `queryset` that match any of the conditions.

    An OR of conditions makes the database fetch every match and sort them. Where compound
    queries may be ordered and sliced (PostgreSQL), each condition is read on its own in the
    page's order, up to `limit` rows (an index range scan each for prefix searches), and only
    those ids are merged: the first `limit` of the union are among them.
    """
    if (
        len(any_of) <= 1
        or not connections[queryset.db].features.supports_slicing_ordering_in_compound
    ):
        return list(queryset.filter(reduce(or_, any_of, Q()))[:limit])
    lean = queryset.select_related(None).prefetch_related(None)
    parts = [lean.filter(condition).values("pk")[:limit] for condition in any_of]
    return list(queryset.filter(pk__in=parts[0].union(*parts[1:]))[:limit])


def keyset_page(
    queryset: QuerySet, *, order: KeysetOrder, cursor: str, size: int, any_of: Sequence[Q] = ()
) -> KeysetPage:
    """One page of `queryset` in `order`, starting after the cursor's key; with `any_of`, only
    the rows matching at least one of those conditions (the branches of a search)."""
    key = cursor_decode(cursor, model=queryset.model, order=order)
    rows: list = []
    in_null_phase = key is not None and key[0] is None
    if not in_null_phase:
        first = queryset.filter(**{f"{order.lead}__isnull": False}) if order.nullable else queryset
        if key is not None:
            first = first.filter(order.after(key))
        rows = _first_rows(first.order_by(*order.order_by()), any_of, size + 1)
    if order.nullable and len(rows) <= size:
        nulls = queryset.filter(reduce(or_, any_of, Q())).filter(**{f"{order.lead}__isnull": True})
        id_cmp = "lt" if order.descending else "gt"
        if in_null_phase:
            nulls = nulls.filter(**{f"pk__{id_cmp}": key[-1]})
        id_order = "-pk" if order.descending else "pk"
        rows += list(nulls.order_by(id_order)[: size + 1 - len(rows)])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = cursor_encode([getattr(last, f) for f in order.fields])
    return KeysetPage(rows=rows, next_cursor=next_cursor, is_first=key is None)
