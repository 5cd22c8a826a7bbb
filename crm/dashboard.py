"""Cards higher apps add to the dashboard (crm sits below every app and never imports them).

Each app registers its cards in its AppConfig.ready(); a card is shown to users holding one of
its roles, rendered from its template with the context its function builds.
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


_cards: dict[str, DashboardCard] = {}


def dashboard_card_register(card: DashboardCard) -> None:
    _cards[card.key] = card


def dashboard_cards_for(request: HttpRequest) -> list[dict]:
    """The cards the user may see, each as {"template": ..., "context": ...}."""
    cards = sorted(_cards.values(), key=lambda c: (c.order, c.key))
    return [
        {"key": c.key, "template": c.template, "context": c.context(request)}
        for c in cards
        if user_has_role(request.user, *c.roles)
    ]
