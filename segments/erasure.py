"""What an erasure does to segments beyond memberships: rules that name the erased person."""

from django.db.models import QuerySet
from django.utils import timezone

from privacy.mentions import Mentions
from segments.models import RefreshRun, Segment
from segments.rules import rule_without_values


def segment_rules_mentions_erase(rows: QuerySet[Segment], mentions: Mentions) -> int:
    """Take the values that name the erased people out of these segments' rules (an email in an
    `in` list, a name in an `eq`), and record on each segment's history that an erasure edited
    its rule, without saying whom. Runs inside the erasure's transaction; returns the segments
    changed."""
    changed = 0
    now = timezone.now()
    for segment in rows.select_for_update().order_by("pk"):
        rule, removed = rule_without_values(segment.rule, names=mentions.in_text)
        if not removed:
            continue
        segment.rule = rule
        segment.save(update_fields=["rule", "updated_at"])
        noun = "value" if removed == 1 else "values"
        RefreshRun.objects.create(
            segment=segment,
            trigger=RefreshRun.Trigger.ERASURE,
            status=RefreshRun.Status.DONE,
            started_at=now,
            finished_at=now,
            size=segment.member_count,
            message=f"An erasure took {removed} {noun} naming the erased person out of the rule.",
        )
        changed += 1
    return changed
