"""One pattern for irreversible and mass actions: the first POST shows what is about to happen
and asks; only a POST that carries the confirmation (and, where asked, the typed name) acts.

A view calls `confirmation_given(request)`; while it is false it answers with
`confirmation_page(request, Confirmation(...))`, which re-posts the same fields to the same
address with the confirmation added. Nothing irreversible is ever one click away.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

CONFIRM_FIELD = "confirmed"
TYPED_FIELD = "confirm_text"
_NOT_CARRIED = {"csrfmiddlewaretoken", CONFIRM_FIELD, TYPED_FIELD}


@dataclass
class Confirmation:
    """What the confirmation page shows: a title, the facts to check, and the button."""

    title: str
    action_label: str
    facts: Sequence[tuple[str, str]] = ()
    warning: str = ""
    cancel_url: str = ""
    danger: bool = True
    # When set, the person types one of these (case-insensitive) before the action runs.
    typed_values: Sequence[str] = ()
    typed_label: str = ""
    # Side-by-side comparison: column headings, then rows of (label, left, right).
    compare_heads: Sequence[str] = ()
    compare_rows: Sequence[tuple[str, str, str]] = field(default_factory=list)


def _normalised(value: str) -> str:
    return " ".join(value.split()).casefold()


def typed_matches(typed: str, expected: Sequence[str]) -> bool:
    """True when `typed` is one of the expected values, ignoring case and spacing."""
    wanted = {_normalised(value) for value in expected if value and value.strip()}
    return bool(wanted) and _normalised(typed) in wanted


def confirmation_given(request: HttpRequest, *, typed_values: Sequence[str] = ()) -> bool:
    """Whether this POST confirms the action (and carries the typed value, where one is asked)."""
    if request.method != "POST" or request.POST.get(CONFIRM_FIELD) != "yes":
        return False
    if typed_values:
        return typed_matches(request.POST.get(TYPED_FIELD, ""), typed_values)
    return True


def confirmation_page(
    request: HttpRequest,
    confirmation: Confirmation,
    *,
    carry: dict[str, str] | None = None,
    status: int | None = None,
) -> HttpResponse:
    """The page that asks: the facts, the posted fields carried along, confirm and cancel.

    A wrong typed value answers 400 with the error next to the field."""
    fields = [
        (name, value)
        for name in request.POST
        if name not in _NOT_CARRIED
        for value in request.POST.getlist(name)
    ]
    if carry:
        fields = [(n, v) for n, v in fields if n not in carry] + list(carry.items())
    typed_error = ""
    if confirmation.typed_values and request.POST.get(CONFIRM_FIELD) == "yes":
        typed_error = "What you typed does not match. Nothing was done."
    return render(
        request,
        "crm/confirm.html",
        {
            "confirmation": confirmation,
            "carried": fields,
            "confirm_action": request.path,
            "typed_error": typed_error,
        },
        status=status or (400 if typed_error else 200),
    )
