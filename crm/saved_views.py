"""Saved views of the lists (deals, customers, accounts): who sees which, and their writes.

A private view is its owner's alone (administrators included: it is a person's working set);
a shared one every colleague who may open the list sees and applies, and only its owner (or an
administrator) changes or deletes it."""

from collections.abc import Mapping, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict

from crm.models import SavedView
from crm.text import text_problem

# Query-string keys that are where a person is, not what they look at.
NOT_SAVED = {"page", "after", "csrfmiddlewaretoken"}
MAX_KEYS = 30
MAX_VALUE = 200


def saved_views_visible_to(user: AbstractBaseUser, *, list_name: str | None = None) -> QuerySet:
    if not user.is_authenticated:
        return SavedView.objects.none()
    views = SavedView.objects.filter(Q(owner_id=user.pk) | Q(shared=True))
    return views.filter(list_name=list_name) if list_name else views


def saved_view_clean_query(query: Mapping) -> dict[str, str]:
    if not isinstance(query, Mapping):
        raise ValidationError({"query": "Give the filter and sort as an object of fields."})
    cleaned = {}
    for key, value in list(query.items())[: MAX_KEYS + 1]:
        if not isinstance(key, str) or not isinstance(value, str | int | float):
            raise ValidationError({"query": "Every field and value is text."})
        value = str(value)
        if key in NOT_SAVED or value == "":
            continue
        if len(key) > 50 or len(value) > MAX_VALUE or text_problem(key + value):
            raise ValidationError({"query": f"{key[:50]!r} is too long or not plain text."})
        cleaned[key] = value
    if len(cleaned) > MAX_KEYS:
        raise ValidationError({"query": f"At most {MAX_KEYS} fields."})
    return cleaned


def saved_view_clean_columns(columns: Sequence) -> list[str]:
    if not isinstance(columns, list | tuple) or len(columns) > MAX_KEYS:
        raise ValidationError({"columns": f"Give up to {MAX_KEYS} column names."})
    cleaned = [str(c) for c in columns]
    if any(len(c) > 50 or not c.replace("_", "").isalnum() for c in cleaned):
        raise ValidationError({"columns": "A column is named by letters, digits and _."})
    return cleaned


def saved_view_create(
    *,
    owner: AbstractBaseUser,
    list_name: str,
    name: str,
    query: Mapping,
    columns: Sequence = (),
    shared: bool = False,
) -> SavedView:
    if list_name not in SavedView.ListName.values:
        raise ValidationError(
            {"list_name": f"Choose one of {', '.join(SavedView.ListName.values)}."}
        )
    name = (name or "").strip()
    if not name or len(name) > 100 or text_problem(name):
        raise ValidationError({"name": "Give the view a name of up to 100 characters."})
    view = SavedView(
        owner=owner,
        list_name=list_name,
        name=name,
        query=saved_view_clean_query(query),
        columns=saved_view_clean_columns(list(columns)),
        shared=bool(shared),
    )
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as error:
        raise ValidationError(
            {"name": "You already have a view of this list by that name."}
        ) from error
    return view


def _check_owner(*, view: SavedView, actor: AbstractBaseUser) -> None:
    if view.owner_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("Only the person who saved a view changes or deletes it.")


def saved_view_update(*, view: SavedView, actor: AbstractBaseUser, **fields) -> SavedView:
    _check_owner(view=view, actor=actor)
    if "query" in fields:
        fields["query"] = saved_view_clean_query(fields["query"])
    if "columns" in fields:
        fields["columns"] = saved_view_clean_columns(fields["columns"])
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()
        if not fields["name"] or text_problem(fields["name"]):
            raise ValidationError({"name": "Give the view a name of up to 100 characters."})
    unknown = set(fields) - {"name", "query", "columns", "shared"}
    if unknown:
        raise ValidationError({n: "This field cannot be set." for n in sorted(unknown)})
    for key, value in fields.items():
        setattr(view, key, value)
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as error:
        raise ValidationError(
            {"name": "You already have a view of this list by that name."}
        ) from error
    return view


def saved_view_delete(*, view: SavedView, actor: AbstractBaseUser) -> None:
    _check_owner(view=view, actor=actor)
    view.delete()


def saved_view_querystring(view: SavedView) -> str:
    query = QueryDict(mutable=True)
    for key, value in view.query.items():
        query[key] = value
    return query.urlencode()
