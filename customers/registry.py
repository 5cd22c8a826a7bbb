"""Hooks through which higher apps (privacy, segments, campaigns) extend customer pages.

customers sits below every other app and never imports them. Instead, each higher app registers,
in its AppConfig.ready(), what it adds to a customer's page and timeline, and what it wants to
know about staff access to personal data.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from customers.models import Account, Customer


@dataclass(frozen=True)
class TimelineEntry:
    """One line on a customer's timeline."""

    at: datetime
    kind: str  # "purchase", "note", "event", "consent", "campaign", "segment", ...
    title: str
    detail: str = ""
    url: str = ""
    # Roles that may open `url`; empty for any staff. Others see the entry without the link.
    url_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerPanel:
    """A box on the customer page, rendered from a template with a context the app builds."""

    key: str
    title: str
    template: str
    context: Callable[[HttpRequest, Customer], dict]
    order: int = 100


# Each source returns the newest entries for a customer, at most `limit` of them.
TimelineSource = Callable[[Customer, int], Iterable[TimelineEntry]]
# Called when staff read or change personal data: (user, action, object kind, object id, details).
AccessHook = Callable[[AbstractBaseUser, str, str, int | None, dict], None]

_timeline_sources: dict[str, TimelineSource] = {}
_events_shown_by_sources: dict[str, Q] = {}
_panels: dict[str, CustomerPanel] = {}
_access_hooks: list[AccessHook] = []


def timeline_source_register(
    key: str, source: TimelineSource, *, shows_events: Q | None = None
) -> None:
    """Add a source to the timeline. `shows_events` matches the customer events the source
    already shows in its own words, which the generic event lines then leave out."""
    _timeline_sources[key] = source
    if shows_events is not None:
        _events_shown_by_sources[key] = shows_events


def timeline_events_shown_by_sources() -> list[Q]:
    """Conditions on customer events that a registered timeline source shows itself."""
    return list(_events_shown_by_sources.values())


def timeline_sources() -> dict[str, TimelineSource]:
    return dict(_timeline_sources)


def customer_panel_register(panel: CustomerPanel) -> None:
    _panels[panel.key] = panel


def customer_panels() -> list[CustomerPanel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.key))


@dataclass(frozen=True)
class AccountPanel:
    """A box on the account page, rendered from a template with a context the app builds."""

    key: str
    title: str
    template: str
    context: Callable[[HttpRequest, Account], dict]
    order: int = 100


_account_panels: dict[str, AccountPanel] = {}


def account_panel_register(panel: AccountPanel) -> None:
    _account_panels[panel.key] = panel


def account_panels() -> list[AccountPanel]:
    return sorted(_account_panels.values(), key=lambda p: (p.order, p.key))


def access_hook_register(hook: AccessHook) -> None:
    if hook not in _access_hooks:
        _access_hooks.append(hook)


def access_record(
    *,
    user: AbstractBaseUser,
    action: str,
    object_kind: str,
    object_id: int | None = None,
    details: dict | None = None,
) -> None:
    """Tell every registered hook (the privacy audit log) that staff touched personal data.

    Actions: "view", "export", "change", "merge", "erase", "delete", "download". Details carry ids and
    counts, never personal data.
    """
    for hook in _access_hooks:
        hook(user, action, object_kind, object_id, details or {})


@dataclass(frozen=True)
class CustomerListFilter:
    """An extra filter on the customer list, offered by a higher app (consent, segment, ...).

    `choices` lists the (value, label) pairs shown in the filter's select box; `apply` narrows a
    customer QuerySet to the chosen value with a set-based lookup (a join or EXISTS), never a loop.
    """

    key: str  # the query-string parameter, e.g. "consent" or "segment"
    label: str
    choices: Callable[[], Iterable[tuple[str, str]]]
    apply: Callable[[QuerySet, str], QuerySet]
    order: int = 100


# Called inside customers.services.customer_merge's transaction, after the customer's own rows
# moved: (target customer id, duplicate customer id). Higher apps move or re-derive their rows.
MergeHook = Callable[[int, int], None]

_list_filters: dict[str, CustomerListFilter] = {}
_merge_hooks: list[MergeHook] = []


def customer_list_filter_register(list_filter: CustomerListFilter) -> None:
    _list_filters[list_filter.key] = list_filter


def customer_list_filters() -> list[CustomerListFilter]:
    return sorted(_list_filters.values(), key=lambda f: (f.order, f.key))


def merge_hook_register(hook: MergeHook) -> None:
    if hook not in _merge_hooks:
        _merge_hooks.append(hook)


def merge_hooks() -> list[MergeHook]:
    return list(_merge_hooks)


# Asked before an email or phone is recorded on a customer (a form, the API, an import): given
# the salted hashes (customers.contact_hashes) of the addresses about to be written, a higher
# app answers the ones it refuses, {(kind, hash): reason}, kind "email" or "phone". privacy
# refuses the addresses of people erased at their request.
AddressCheck = Callable[[set[str], set[str]], dict[tuple[str, str], str]]

_address_checks: list[AddressCheck] = []


def address_check_register(check: AddressCheck) -> None:
    if check not in _address_checks:
        _address_checks.append(check)


def addresses_refused(
    *, email_hashes: Iterable[str] = (), phone_hashes: Iterable[str] = ()
) -> dict[tuple[str, str], str]:
    """The addresses among these hashes that a registered check refuses, with the reason."""
    emails, phones = {h for h in email_hashes if h}, {h for h in phone_hashes if h}
    refused: dict[tuple[str, str], str] = {}
    if emails or phones:
        for check in _address_checks:
            refused.update(check(emails, phones))
    return refused


# Told after a transaction that marked customers (customers.marks) commits: segments queues its
# real-time re-evaluation of memberships. Called outside any transaction; must not raise.
MarksListener = Callable[[], None]

_marks_listeners: list[MarksListener] = []


def marks_listener_register(listener: MarksListener) -> None:
    if listener not in _marks_listeners:
        _marks_listeners.append(listener)


def marks_listeners() -> list[MarksListener]:
    return list(_marks_listeners)
