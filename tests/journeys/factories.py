import datetime as dt

from journeys.models import Journey
from journeys.services import journey_create, step_add


def welcome_journey(*, segment, actor=None, **fields) -> Journey:
    """The welcome journey of issue 20: enter "new customers", welcome email, wait a day, split
    on "opened", a second email (yes) or a task for the owner (no), goal: first purchase."""
    wait = fields.pop("wait", None) or dt.timedelta(days=1)
    journey = journey_create(
        actor=actor,
        name="Welcome",
        trigger=Journey.Trigger.SEGMENT,
        trigger_segment=segment,
        goal=Journey.Goal.PURCHASE,
        **fields,
    )
    step_add(
        journey=journey,
        actor=actor,
        kind="send",
        subject="Welcome",
        body="Hello {{ customer.first_name }}",
    )
    step_add(journey=journey, actor=actor, kind="wait", wait=wait)
    split = step_add(journey=journey, actor=actor, kind="split", condition="opened")
    second = step_add(
        journey=journey, actor=actor, kind="send", subject="Still curious?", body="Here is more."
    )
    step_add(journey=journey, actor=actor, kind="exit")
    task = step_add(journey=journey, actor=actor, kind="task", task_subject="Call the new customer")
    split.yes_step, split.no_step = second, task
    split.save(update_fields=["yes_step", "no_step"])
    return journey
