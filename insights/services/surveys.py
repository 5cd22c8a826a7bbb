"""Satisfaction surveys: one question (NPS or CSAT) sent as an email campaign to a segment,
answered with one click through a signed link, recorded as a behaviour event.

Sending goes through the campaign machinery (campaigns.services): the audience is the
segment minus those without consent for email marketing, the suppression list and so on, and
consent is checked again just before each message leaves, like any campaign. Each message
carries `{{ links.survey }}`, the send id signed with SURVEY_SALT (registered with
campaigns.links.message_link_register); the answer page loads it back.
"""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape

from campaigns.models import Campaign, Send
from campaigns.services import campaign_create, campaign_launch, variant_create
from crm.text import text_problem
from customers.models import Event
from insights.models import SURVEY_EVENT, CustomerSatisfaction, Survey, nps_class
from segments.models import Segment

SURVEY_SALT = "insights.survey"
COMMENT_MAX = 2000
TEMPLATE_MARKS = ("{{", "}}", "{%", "%}", "{#", "#}")
SCALE_WORDS = {
    Survey.Kind.NPS: ("0 = not at all likely", "10 = extremely likely"),
    Survey.Kind.CSAT: ("1 = very unsatisfied", "5 = very satisfied"),
}


class SurveyLinkError(Exception):
    """The link is broken, changed or too old."""


def survey_token(*, send_id: int) -> str:
    """The token of a send's survey link (the messages sign the same with MessageLinks)."""
    return signing.dumps(send_id, salt=SURVEY_SALT)


def survey_link_send_id(token: str) -> int:
    try:
        value = signing.loads(token, salt=SURVEY_SALT, max_age=settings.SURVEY_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise SurveyLinkError("This survey link has expired.") from exc
    except signing.BadSignature as exc:
        raise SurveyLinkError("This survey link is not valid: it may have been cut off.") from exc
    if not isinstance(value, int):
        raise SurveyLinkError("This survey link is not valid: it may have been cut off.")
    return value


def _text(value: object, *, field: str, max_length: int, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise ValidationError({field: "required"})
    if len(text) > max_length:
        raise ValidationError({field: f"at most {max_length} characters"})
    problem = text_problem(text)
    if problem:
        raise ValidationError({field: problem})
    return text


def _message(survey: Survey) -> tuple[str, str]:
    """The text and HTML templates of the survey's message (the question is data, not template:
    template marks are refused, and the HTML escapes it)."""
    low, high = SCALE_WORDS[survey.kind]
    text = (
        f"{survey.question}\n\nAnswer with one click: {{{{ links.survey }}}}\n\n"
        f"({low}, {high})\n\nUnsubscribe: {{{{ links.unsubscribe }}}}\n"
    )
    buttons = " ".join(
        f'<a href="{{{{ links.survey }}}}?score={score}">{score}</a>' for score in survey.scores
    )
    html = (
        f"<html><body><p>{escape(survey.question)}</p><p>{buttons}</p>"
        f"<p><small>{escape(low)}, {escape(high)}</small></p>"
        '<p><small><a href="{{ links.unsubscribe }}">Unsubscribe</a></small></p></body></html>'
    )
    return text, html


def survey_create(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    kind: str,
    question: str,
    segment: Segment | None,
) -> Survey:
    """A survey and its draft campaign to the segment (launched by survey_send)."""
    name = _text(name, field="name", max_length=150)
    question = _text(question, field="question", max_length=300)
    for field, value in (("name", name), ("question", question)):
        if any(mark in value for mark in TEMPLATE_MARKS):
            raise ValidationError({field: "may not contain {{, }}, {%, %}, {# or #}"})
    if kind not in Survey.Kind.values:
        raise ValidationError({"kind": f"one of {', '.join(Survey.Kind.values)}"})
    if segment is None:
        raise ValidationError({"segment": "required: the segment the survey is sent to"})
    with transaction.atomic():
        campaign = campaign_create(
            actor=actor,
            name=f"Survey: {name}",
            goal="Satisfaction survey",
            target_segments=[segment],
        )
        survey = Survey.objects.create(
            name=name,
            kind=kind,
            question=question,
            segment=segment,
            campaign=campaign,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        text, html = _message(survey)
        variant_create(campaign=campaign, actor=actor, subject=question, text=text, html=html)
    return survey


def survey_send(*, survey: Survey, actor: AbstractBaseUser | None) -> Campaign:
    """Launch the survey's campaign (consent-checked like any campaign)."""
    if survey.campaign is None:
        raise ValidationError({"campaign": "the survey's campaign was deleted"})
    return campaign_launch(campaign=survey.campaign, actor=actor)


def survey_answer_record(*, send: Send, score: object, comment: object = None) -> Event:
    """Record the recipient's score (and comment) as one behaviour event per message; a second
    click changes the score. Their latest answer becomes their satisfaction rule fields."""
    survey = Survey.objects.filter(campaign_id=send.campaign_id).first()
    if survey is None:
        raise ValidationError({"survey": "this message is not a survey"})
    try:
        score = int(str(score))
    except ValueError:
        score = None
    if score not in survey.scores:
        raise ValidationError(
            {"score": f"a whole number from {survey.scores[0]} to {survey.scores[-1]}"}
        )
    text = None if comment is None else _text(comment, field="comment", max_length=COMMENT_MAX,
                                                required=False)  # fmt: skip
    now = timezone.now()
    with transaction.atomic():
        customer = type(send.customer).objects.select_for_update().get(pk=send.customer_id)
        if customer.erased_at is not None:
            raise ValidationError({"customer": "erased"})
        event = (
            Event.objects.select_for_update()
            .filter(customer=customer, type=SURVEY_EVENT, properties__send=send.pk)
            .first()
        )
        properties = {
            "survey": survey.pk,
            "campaign": send.campaign_id,
            "send": send.pk,
            "kind": survey.kind,
            "score": score,
            "comment": text if text is not None else (event.properties.get("comment", "")
                                                      if event else ""),
        }  # fmt: skip
        if event is None:
            event = Event.objects.create(
                customer=customer, type=SURVEY_EVENT, occurred_at=now, properties=properties
            )
        else:
            event.properties = properties
            event.occurred_at = now
            event.save(update_fields=["properties", "occurred_at"])
        if survey.kind == Survey.Kind.NPS:
            latest = {"nps_score": score, "nps_class": nps_class(score), "nps_answered_at": now}
        else:
            latest = {"csat_score": score, "csat_answered_at": now}
        CustomerSatisfaction.objects.update_or_create(customer=customer, defaults=latest)
    return event
