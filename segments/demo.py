"""Demo segments, so a marketer on a fresh `make run` has audiences to look at and target."""

from django.db import models

from segments.models import Segment
from segments.services import segment_create, segment_refresh

DEMO_SEGMENTS = [
    (
        "demo-recent-buyers",
        "Bought in the last 90 days",
        "Customers with at least one purchase in the last 90 days.",
        {"metric": "purchase_count", "window": {"last_days": 90}, "op": "gte", "value": 1},
    ),
    (
        "demo-high-value",
        "High-value customers",
        "Lifetime value of 500 or more.",
        {"field": "lifetime_value", "op": "gte", "value": 500},
    ),
    (
        "demo-lapsed-subscribers",
        "Lapsed email subscribers",
        "Bought before, nothing in the last 180 days, and consent to marketing email.",
        {
            "all": [
                {"field": "purchase_count", "op": "gte", "value": 1},
                {"metric": "purchase_count", "window": {"last_days": 180}, "op": "eq", "value": 0},
                {"consent": "email_marketing", "state": "granted"},
            ]
        },
    ),
]


def demo_segments_seed(users: dict[str, models.Model]) -> int:
    """Create the demo segments that do not exist yet and refresh all of them; returns how many."""
    owner = users.get("marketing")
    for slug, name, description, rule in DEMO_SEGMENTS:
        segment = Segment.objects.filter(slug=slug).first()
        if segment is None:
            segment = segment_create(
                name=name, owner=owner, rule=rule, description=description, slug=slug
            )
        segment_refresh(segment=segment)
    return len(DEMO_SEGMENTS)
