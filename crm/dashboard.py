"""Cards higher apps add to the dashboard (crm sits below every app and never imports them).

Each app registers its cards in its AppConfig.ready(); a card is shown to users holding one of
its roles, rendered from its template with the context its function builds. The sales widgets
(follow-ups, accounts, revenue) are the dashboard's own and shown to sales staff only: a marketer
sees the marketing cards (campaign results, segment growth, upcoming sends), a privacy officer the
privacy cards (the request queue, deadlines, erasures, consent withdrawals); an administrator,
who holds every role, sees them all.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from crm.roles import user_has_role


@dataclass(frozen=True)
class DashboardCard:
    key: str
    template: str
    context: Callable[[HttpRequest], dict]
    roles: tuple[str, ...]
    order: int = 100
    # A wide card spans the whole row (a chart, a table of many columns).
    wide: bool = False


_cards: dict[str, DashboardCard] = {}


def dashboard_card_register(card: DashboardCard) -> None:
    _cards[card.key] = card


def dashboard_cards_for(request: HttpRequest) -> list[dict]:
    """The cards the user may see, each as {"template": ..., "context": ...}."""
    cards = sorted(_cards.values(), key=lambda c: (c.order, c.key))
    return [
        {"key": c.key, "template": c.template, "context": c.context(request), "wide": c.wide}
        for c in cards
        if user_has_role(request.user, *c.roles)
    ]
