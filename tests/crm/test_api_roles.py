"""Every API endpoint, called as every role: nobody reads or writes what they should not.

The endpoints are discovered from the router and the URL resolver, so an endpoint added later
without a row in ENDPOINTS (or OTHER_URLS) fails here until someone decides who may use it.

Each row gives, per role, one letter per action (list, retrieve, create, update, delete):

  O  allowed: list shows the object; retrieve 200; create 201; update 200; delete 204
  E  list answers 200 but without the object (it belongs to someone else)
  D  denied: 401/403, and nothing changed
  H  hidden: 404 for the object, or a 400 naming the parent field on create (a customer or
     account the user may not see does not exist for them); nothing changed
  A  absent: the endpoint does not offer the action (405, or 404 when there is no such URL;
     401/403 for callers who are turned away before that); nothing changed

The object under test belongs to (or hangs off a customer of) `sales_owner`.
"""

import datetime as dt
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from crm.api.urls import router
from crm.models import BulkJob, SavedView
from deals.models import DealLine, ForecastTarget
from privacy.models import ConsentRecord, DataExport, Purpose, RequestType
from privacy.services import consent_grant
from segments.ml.models import MLSegment
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    ProductFactory,
    PurchaseFactory,
)
from tests.deals.factories import activity_make, deal_make, pipeline_make
from tests.privacy.factories import DataSubjectRequestFactory
from tests.segments.factories import MembershipFactory

ROLES = ("anonymous", "no_role", "sales_owner", "other_sales", "marketing", "privacy", "superuser")
ACTIONS = ("list", "retrieve", "create", "update", "delete")


@dataclass
class Endpoint:
    obj: str  # attribute of World holding the object under test
    create: callable  # World -> payload that is valid for someone allowed to create
    update: dict
    expect: dict[str, str]
    parent_field: str = "customer"  # named in the 400 when the parent is hidden
    creates: bool = True  # whether an allowed create adds a row of the object's model
    extra: dict = field(default_factory=dict)


def _expect(**rows: str) -> dict[str, str]:
    rows = {role: letters.replace(" ", "") for role, letters in rows.items()}
    assert set(rows) == set(ROLES), f"every role needs a row, got {sorted(rows)}"
    assert all(len(v) == len(ACTIONS) for v in rows.values())
    return rows


ENDPOINTS: dict[str, Endpoint] = {
    "account": Endpoint(
        obj="account",
        create=lambda w: {"name": "Globex", "country": "FR"},
        update={"industry": "Shipping"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOA",
            other_sales="EH OHA",
            marketing="OO DDA",
            privacy="OO DDA",
            superuser="OO OOA",
        ),
    ),
    "customer": Endpoint(
        obj="customer",
        create=lambda w: {"first_name": "Nia", "email": "nia@example.org", "account": w.account.pk},
        update={"city": "Hamburg"},
        parent_field="account",
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOA",
            other_sales="EH HHA",
            marketing="OO DDA",
            privacy="OO DDA",
            superuser="OO OOA",
        ),
    ),
    "product": Endpoint(
        obj="product",
        create=lambda w: {"sku": "NEW-1", "name": "Trail shoe", "price": "89.00"},
        update={"name": "Renamed shoe"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO DDD",
            other_sales="OO DDD",
            marketing="OO OOD",
            privacy="DD DDD",
            superuser="OO OOO",
        ),
    ),
    "purchase": Endpoint(
        obj="purchase",
        create=lambda w: {
            "customer": w.customer.pk,
            "purchased_at": (timezone.now() - timedelta(days=1)).isoformat(),
            "amount": "42.50",
            "external_id": "ORDER-NEW",
        },
        update={"amount": "1.00"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OAA",
            other_sales="EH HAA",
            marketing="OO DAA",
            privacy="OO DAA",
            superuser="OO OAA",
        ),
    ),
    "event": Endpoint(
        obj="event",
        create=lambda w: {
            "customer": w.customer.pk,
            "type": "email_click",
            "occurred_at": timezone.now().isoformat(),
            "properties": {"campaign": 7},
        },
        update={"type": "page_view"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO DAA",
            other_sales="EH DAA",
            marketing="OO OAA",
            privacy="OO DAA",
            superuser="OO OAA",
        ),
    ),
    "note": Endpoint(
        obj="note",
        create=lambda w: {"customer": w.customer.pk, "body": "Wants a quote", "kind": "call"},
        update={"body": "Changed"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOD",
            other_sales="EH HHD",
            marketing="OO DDD",
            privacy="OO DDD",
            superuser="OO OOO",
        ),
    ),
    "consent": Endpoint(
        obj="consent",
        create=lambda w: {
            "customer": w.customer.pk,
            "purpose": "sms_marketing",
            "state": "granted",
        },
        update={"state": "withdrawn"},
        expect=_expect(
            anonymous="DA DAA",
            no_role="DA DAA",
            sales_owner="OA DAA",
            other_sales="EA DAA",
            marketing="DA DAA",
            privacy="OA OAA",
            superuser="OA OAA",
        ),
    ),
    "purpose": Endpoint(
        obj="purpose",
        create=lambda w: {"code": "new_purpose", "name": "New"},
        update={"name": "Renamed"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="DD AAA",
            other_sales="DD AAA",
            marketing="DD AAA",
            privacy="OO AAA",
            superuser="OO AAA",
        ),
    ),
}

SEGMENT_RULE = {"field": "country", "op": "eq", "value": "DE"}
ENDPOINTS["segment"] = Endpoint(
    obj="segment",
    create=lambda w: {"name": "Germans", "rule": SEGMENT_RULE},
    update={"name": "Renamed segment"},
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="OO DDD",
        other_sales="OO DDD",
        marketing="OO OOO",
        privacy="DD DDD",
        superuser="OO OOO",
    ),
)


_PRIVACY_ONLY = _expect(
    anonymous="DD DDD",
    no_role="DD DDD",
    sales_owner="DD DDD",
    other_sales="DD DDD",
    marketing="DD DDD",
    privacy="OO OAA",
    superuser="OO OAA",
)
ENDPOINTS["data-request"] = Endpoint(
    obj="data_request",
    create=lambda w: {"customer": w.customer.pk, "type": "access"},
    update={"status": "completed"},
    expect=_PRIVACY_ONLY,
)
ENDPOINTS["data-export"] = Endpoint(
    obj="data_export",
    create=lambda w: {"customer": w.customer.pk},
    update={"status": "done"},
    expect=_PRIVACY_ONLY,
)
# Answers yes or no about an email or phone; it has no objects of its own.
ENDPOINTS["suppression-check"] = Endpoint(
    obj="customer",
    create=lambda w: {"email": "someone@example.org"},
    update={"email": "x@example.org"},
    creates=False,
    expect=_expect(
        anonymous="DA DAA",
        no_role="DA DAA",
        sales_owner="DA DAA",
        other_sales="DA DAA",
        marketing="DA DAA",
        privacy="AA OAA",
        superuser="AA OAA",
    ),
)
# Public signup (no login, like the signup page): anyone may post; 202 whatever happened.
ENDPOINTS["signup"] = Endpoint(
    obj="customer",
    create=lambda w: {"email": "newcomer@example.org", "purposes": ["email_marketing"]},
    update={"email": "x@example.org"},
    creates=False,
    expect=_expect(
        anonymous="AA OAA",
        no_role="AA OAA",
        sales_owner="AA OAA",
        other_sales="AA OAA",
        marketing="AA OAA",
        privacy="AA OAA",
        superuser="AA OAA",
    ),
)


@dataclass
class ExtraAction:
    """A custom action of an endpoint (`@action`): how to call it and who may.

    Letters per role: O allowed (not turned away; a 404 for a missing sub-object or a 400 for a
    payload the action refuses still counts as let in), E allowed but the sales owner's customer
    is not in the answer, D turned away (401/403). With `shows_customer`, O also requires the
    customer in the answer.
    """

    method: str
    path: callable  # World -> URL
    expect: dict[str, str]
    payload: callable = lambda w: None
    shows_customer: bool = False


def _who(**rows: str) -> dict[str, str]:
    assert set(rows) == set(ROLES), f"every role needs a letter, got {sorted(rows)}"
    return rows


_SEGMENT_READ = _who(anonymous="D", no_role="D", sales_owner="O", other_sales="O",
                     marketing="O", privacy="D", superuser="O")  # fmt: skip
_SEGMENT_MEMBERS = {**_SEGMENT_READ, "other_sales": "E"}
_SEGMENT_WRITE = _who(anonymous="D", no_role="D", sales_owner="D", other_sales="D",
                      marketing="O", privacy="D", superuser="O")  # fmt: skip

EXTRA_ACTIONS: dict[str, ExtraAction] = {
    "segment-catalogue": ExtraAction("get", lambda w: "/api/segments/catalogue/", _SEGMENT_READ),
    "segment-preview": ExtraAction(
        "post", lambda w: "/api/segments/preview/", _SEGMENT_WRITE, lambda w: {"rule": SEGMENT_RULE}
    ),
    "segment-refresh": ExtraAction(
        "post", lambda w: f"/api/segments/{w.segment.pk}/refresh/", _SEGMENT_WRITE
    ),
    "segment-run": ExtraAction(
        "get", lambda w: f"/api/segments/{w.segment.pk}/runs/999999/", _SEGMENT_READ
    ),
    "segment-members": ExtraAction(
        "get",
        lambda w: f"/api/segments/{w.segment.pk}/members/",
        _SEGMENT_MEMBERS,
        shows_customer=True,
    ),
    "segment-history": ExtraAction(
        "get", lambda w: f"/api/segments/{w.segment.pk}/history/", _SEGMENT_READ
    ),
    "segment-export": ExtraAction(
        "get",
        lambda w: f"/api/segments/{w.segment.pk}/export/",
        _SEGMENT_MEMBERS,
        shows_customer=True,
    ),
    "segment-add-members": ExtraAction(
        "post",
        lambda w: f"/api/segments/{w.segment.pk}/add-members/",
        _SEGMENT_WRITE,
        lambda w: {"customer_ids": [w.customer.pk]},
    ),
    "segment-remove-members": ExtraAction(
        "post",
        lambda w: f"/api/segments/{w.segment.pk}/remove-members/",
        _SEGMENT_WRITE,
        lambda w: {"customer_ids": [w.customer.pk]},
    ),
}

_PRIVACY_WRITE = _who(anonymous="D", no_role="D", sales_owner="D", other_sales="D",
                      marketing="D", privacy="O", superuser="O")  # fmt: skip
EXTRA_ACTIONS |= {
    "data-request-transition": ExtraAction(
        "post",
        lambda w: f"/api/data-requests/{w.data_request.pk}/transition/",
        _PRIVACY_WRITE,
        lambda w: {"status": "in_progress"},
    ),
    "data-request-extend": ExtraAction(
        "post",
        lambda w: f"/api/data-requests/{w.data_request.pk}/extend/",
        _PRIVACY_WRITE,
        lambda w: {"reason": "Records on paper must be collected first."},
    ),
    "data-request-match": ExtraAction(
        "post",
        lambda w: f"/api/data-requests/{w.data_request.pk}/match/",
        _PRIVACY_WRITE,
        lambda w: {"customer": w.customer.pk},
    ),
}

_MARKETING_ONLY = _expect(
    anonymous="DD DDD",
    no_role="DD DDD",
    sales_owner="DD DDD",
    other_sales="DD DDD",
    marketing="OO OOO",
    privacy="DD DDD",
    superuser="OO OOO",
)
ENDPOINTS["campaign"] = Endpoint(
    obj="campaign",
    create=lambda w: {"name": "Spring sale", "target_segments": [w.segment.pk]},
    update={"name": "Renamed campaign"},
    expect=_MARKETING_ONLY,
)
_CAMPAIGN = _who(anonymous="D", no_role="D", sales_owner="D", other_sales="D",
                 marketing="O", privacy="D", superuser="O")  # fmt: skip
EXTRA_ACTIONS |= {
    f"campaign-{name}": ExtraAction(method, (lambda n: lambda w: f"/api/campaigns/{w.campaign.pk}/{n}/")(path), _CAMPAIGN, payload)
    for name, method, path, payload in (
        ("launch", "post", "launch", lambda w: None),
        ("pause", "post", "pause", lambda w: None),
        ("resume", "post", "resume", lambda w: None),
        ("cancel", "post", "cancel", lambda w: None),
        ("stop", "post", "stop", lambda w: None),
        ("report", "get", "report", lambda w: None),
        ("audience-size", "get", "audience-size", lambda w: None),
        ("preview", "post", "preview", lambda w: {"customer": w.customer.pk}),
        ("test-send", "post", "test-send", lambda w: {"customer": w.customer.pk}),
        ("variants", "get", "variants", lambda w: None),
        ("variant", "patch", "variants/999999", lambda w: {"subject": "Hi"}),
        ("promotion", "put", "promotion", lambda w: {"discount": "percent", "value": "10"}),
        ("rotate-webhook-secret", "post", "rotate-webhook-secret", lambda w: None),
        ("resend-unknown", "post", "resend-unknown", lambda w: None),
    )
}  # fmt: skip
EXTRA_ACTIONS |= {
    "campaign-audience-estimate": ExtraAction(
        "post",
        lambda w: "/api/campaigns/audience-estimate/",
        _CAMPAIGN,
        lambda w: {"target_segments": [w.segment.pk]},
    ),
    "campaign-promotion-code": ExtraAction(
        "get",
        lambda w: "/api/campaigns/promotion-codes/NOSUCHCODE/",
        _who(
            anonymous="D",
            no_role="D",
            sales_owner="O",
            other_sales="O",
            marketing="O",
            privacy="D",
            superuser="O",
        ),  # fmt: skip
    ),
    "campaign-provider-events": ExtraAction(
        "post",
        lambda w: "/api/campaigns/provider-events/",
        _CAMPAIGN,
        lambda w: {"events": [{"type": "bounce", "message_id": "<unknown@crm.local>"}]},
    ),
}

# Journeys, their steps and enrolments: marketing and superusers only, as campaigns.
ENDPOINTS["journey"] = Endpoint(
    obj="journey",
    create=lambda w: {"name": "Welcome", "trigger": "manual"},
    update={"name": "Renamed journey"},
    expect=_MARKETING_ONLY,
)
ENDPOINTS["journey-step"] = Endpoint(
    obj="journey_step",
    create=lambda w: {"journey": w.journey.pk, "kind": "task", "task_subject": "Call"},
    update={"label": "The end"},
    expect=_MARKETING_ONLY,
)
ENDPOINTS["journey-enrolment"] = Endpoint(
    obj="journey_enrolment",
    create=lambda w: {"journey": w.journey.pk, "customer": w.customer.pk},
    update={"state": "completed"},
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="DD DDD",
        other_sales="DD DDD",
        marketing="OO AAA",
        privacy="DD DDD",
        superuser="OO AAA",
    ),
)
EXTRA_ACTIONS |= {
    f"journey-{name}": ExtraAction(method, (lambda n: lambda w: f"/api/journeys/{w.journey.pk}/{n}/")(name), _CAMPAIGN, payload)
    for name, method, payload in (
        ("activate", "post", lambda w: None),
        ("pause", "post", lambda w: None),
        ("test", "post", lambda w: {"customer": w.customer.pk}),
        ("enrol", "post", lambda w: {"customer": w.customer.pk}),
        ("report", "get", lambda w: None),
    )
}  # fmt: skip
EXTRA_ACTIONS |= {
    "journey-step-move": ExtraAction(
        "post",
        lambda w: f"/api/journey-steps/{w.journey_step.pk}/move/",
        _CAMPAIGN,
        lambda w: {"direction": "up"},
    ),
    "journey-enrolment-hurry": ExtraAction(
        "post", lambda w: f"/api/journey-enrolments/{w.journey_enrolment.pk}/hurry/", _CAMPAIGN
    ),
    "journey-enrolment-exit": ExtraAction(
        "post", lambda w: f"/api/journey-enrolments/{w.journey_enrolment.pk}/exit/", _CAMPAIGN
    ),
}

# ML segments, RFM and predictive scores (segments.ml): marketing and superusers only.
_ML_ONLY = _expect(
    anonymous="DD DDD",
    no_role="DD DDD",
    sales_owner="DD DDD",
    other_sales="DD DDD",
    marketing="OO OOO",
    privacy="DD DDD",
    superuser="OO OOO",
)
ENDPOINTS["ml-segment"] = Endpoint(
    obj="ml_segment",
    create=lambda w: {"name": "Spenders", "features": ["rfm", "aov"]},
    update={"name": "Renamed clusters"},
    expect=_ML_ONLY,
)
# Only custom actions (below); no list or detail of its own.
ENDPOINTS["scores"] = Endpoint(
    obj="customer",
    create=lambda w: {},
    update={"email": "x@example.org"},
    creates=False,
    expect=_expect(**dict.fromkeys(ROLES, "AA AAA")),
)
_ML = _who(anonymous="D", no_role="D", sales_owner="D", other_sales="D",
           marketing="O", privacy="D", superuser="O")  # fmt: skip
EXTRA_ACTIONS |= {
    "ml-segment-train": ExtraAction(
        "post", lambda w: f"/api/ml-segments/{w.ml_segment.pk}/train/", _ML
    ),
    "ml-segment-assign": ExtraAction(
        "post", lambda w: f"/api/ml-segments/{w.ml_segment.pk}/assign/", _ML
    ),
    "ml-segment-job": ExtraAction(
        "get", lambda w: f"/api/ml-segments/{w.ml_segment.pk}/jobs/999999/", _ML
    ),
    "ml-segment-versions": ExtraAction(
        "get", lambda w: f"/api/ml-segments/{w.ml_segment.pk}/versions/", _ML
    ),
    "ml-segment-clusters": ExtraAction(
        "get", lambda w: f"/api/ml-segments/{w.ml_segment.pk}/clusters/", _ML
    ),
    "ml-segment-rename-cluster": ExtraAction(
        "post",
        lambda w: f"/api/ml-segments/{w.ml_segment.pk}/clusters/999999/rename/",
        _ML,
        lambda w: {"name": "Big spenders"},
    ),
    "scores-rfm": ExtraAction("get", lambda w: "/api/scores/rfm/", _ML),
    "scores-rfm-run": ExtraAction("post", lambda w: "/api/scores/rfm/run/", _ML, lambda w: {}),
    "scores-customer": ExtraAction("get", lambda w: f"/api/scores/customers/{w.customer.pk}/", _ML),
    "scores-churn": ExtraAction("get", lambda w: "/api/scores/churn/", _ML),
    "scores-churn-train": ExtraAction(
        "post", lambda w: "/api/scores/churn/train/", _ML, lambda w: {}
    ),
    "scores-lifetime": ExtraAction("get", lambda w: "/api/scores/lifetime/", _ML),
    "scores-lifetime-fit": ExtraAction(
        "post", lambda w: "/api/scores/lifetime/fit/", _ML, lambda w: {}
    ),
    "scores-job": ExtraAction("get", lambda w: "/api/scores/jobs/999999/", _ML),
}

# The sales pipeline (deals): sales change what they own, marketing reads, privacy has no part,
# administrators set up pipelines, stages and targets.
_PIPELINE_SETUP = _expect(
    anonymous="DD DDD",
    no_role="DD DDD",
    sales_owner="OO DDD",
    other_sales="OO DDD",
    marketing="OO DDD",
    privacy="DD DDD",
    superuser="OO OOO",
)
# Pipelines are never deleted (their deals keep them); stages and targets are.
ENDPOINTS["pipeline"] = Endpoint(
    obj="pipeline",
    create=lambda w: {"name": "Renewals", "stages": [{"name": "Open", "probability": 20}]},
    update={"name": "Renamed pipeline"},
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="OO DDA",
        other_sales="OO DDA",
        marketing="OO DDA",
        privacy="DD DDD",
        superuser="OO OOA",
    ),
)
ENDPOINTS["stage"] = Endpoint(
    obj="stage",
    create=lambda w: {"pipeline": w.pipeline.pk, "name": "Demo", "probability": 20},
    update={"name": "Renamed stage"},
    expect=_PIPELINE_SETUP,
)
ENDPOINTS["forecast-target"] = Endpoint(
    obj="forecast_target",
    create=lambda w: {
        "owner": w.users["sales_owner"].pk,
        "month": "2026-05-01",
        "amount": "1000.00",
    },
    update={"amount": "2000.00"},
    expect=_PIPELINE_SETUP,
)
ENDPOINTS["deal"] = Endpoint(
    obj="deal",
    create=lambda w: {"name": "New deal", "account": w.account.pk, "amount": "500.00"},
    update={"name": "Renamed deal"},
    parent_field="account",
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="OO OOD",
        other_sales="EH HHD",
        marketing="OO DDD",
        privacy="DD DDD",
        superuser="OO OOO",
    ),
)
_DEAL_CHILD = _expect(
    anonymous="DD DDD",
    no_role="DD DDD",
    sales_owner="OO OOO",
    other_sales="EH HHH",
    marketing="OO DDD",
    privacy="DD DDD",
    superuser="OO OOO",
)
ENDPOINTS["deal-line"] = Endpoint(
    obj="deal_line",
    create=lambda w: {"deal": w.deal.pk, "product": w.product.pk, "quantity": 2},
    update={"quantity": 3},
    parent_field="deal",
    expect=_DEAL_CHILD,
)
ENDPOINTS["activity"] = Endpoint(
    obj="activity",
    create=lambda w: {"deal": w.deal.pk, "subject": "Called", "kind": "call"},
    update={"subject": "Changed"},
    parent_field="deal",
    expect=_DEAL_CHILD,
)
_DEAL_READ = _who(anonymous="D", no_role="D", sales_owner="O", other_sales="O",
                  marketing="O", privacy="D", superuser="O")  # fmt: skip
EXTRA_ACTIONS |= {
    "deal-move": ExtraAction(
        "post",
        lambda w: f"/api/deals/{w.deal.pk}/move/",
        {**_DEAL_READ, "marketing": "D"},
        lambda w: {"stage": w.deal.pipeline.stages.get(name="Proposal").pk},
    ),
    "deal-history": ExtraAction("get", lambda w: f"/api/deals/{w.deal.pk}/history/", _DEAL_READ),
    "deal-forecast": ExtraAction("get", lambda w: "/api/deals/forecast/", _DEAL_READ),
    # One request per bulk action: readers may export (what they may read), only sales and
    # admins change (tests/deals/test_bulk.py walks who reaches which deals).
    "deal-bulk": ExtraAction(
        "post",
        lambda w: "/api/deals/bulk/",
        _DEAL_READ,
        lambda w: {"action": "export", "ids": [w.deal.pk]},
    ),
    "deal-bulk-job": ExtraAction("get", lambda w: "/api/deals/bulk/999999/", _DEAL_READ),
    # The learned win probability: read like the deal; training (POST) is an administrator's
    # (tests/deals/test_win_model.py).
    "deal-win-probability": ExtraAction(
        "get", lambda w: f"/api/deals/{w.deal.pk}/win-probability/", _DEAL_READ
    ),
    "deal-win-model": ExtraAction("get", lambda w: "/api/deals/win-model/", _DEAL_READ),
}
# Saved views: every staff role saves its own; a private view is its owner's alone, administrators
# included (shared views are walked in tests/crm/test_saved_views.py).
ENDPOINTS["saved-view"] = Endpoint(
    obj="saved_view",
    create=lambda w: {"list_name": "deals", "name": "Closing soon", "query": {"sort": "close"}},
    update={"name": "Renamed view"},
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="OO OOO",
        other_sales="EH OHH",
        marketing="EH OHH",
        privacy="EH OHH",
        superuser="EH OHH",
    ),
)
# Bulk actions over a list (crm/bulk.py): every role that opens the list exports what it may read
# (each action checks who may take it: tests/customers/test_bulk.py, tests/deals/test_bulk.py);
# a job is followed by its author and administrators; there is no list, change or deletion.
ENDPOINTS["bulk"] = Endpoint(
    obj="bulk_job",
    create=lambda w: {"list": "customers", "action": "export", "ids": [w.customer.pk]},
    update={"action": "delete"},
    creates=False,
    expect=_expect(
        anonymous="DD DDD",
        no_role="DD DDD",
        sales_owner="AO OAA",
        other_sales="AH OAA",
        marketing="AH OAA",
        privacy="AH OAA",
        superuser="AO OAA",
    ),
)
# Insights (KPIs, comparison, cohorts, surveys): marketing and superusers only.
_INSIGHTS = _who(anonymous="D", no_role="D", sales_owner="D", other_sales="D",
                 marketing="O", privacy="D", superuser="O")  # fmt: skip
EXTRA_ACTIONS |= {
    "insights-kpis": ExtraAction(
        "get", lambda w: f"/api/insights/kpis/?segment={w.segment.pk}", _INSIGHTS
    ),
    "insights-kpis-refresh": ExtraAction(
        "post", lambda w: "/api/insights/kpis/refresh/", _INSIGHTS, lambda w: {"days": 30}
    ),
    "insights-compare": ExtraAction(
        "get", lambda w: f"/api/insights/compare/?segments={w.segment.pk},{w.segment.pk}", _INSIGHTS
    ),
    "insights-cohorts": ExtraAction("get", lambda w: "/api/insights/cohorts/", _INSIGHTS),
    "insights-surveys": ExtraAction(
        "post",
        lambda w: "/api/insights/surveys/",
        _INSIGHTS,
        lambda w: {
            "name": "NPS",
            "kind": "nps",
            "question": "Recommend us?",
            "segment": w.segment.pk,
        },
    ),
    "insights-survey-send": ExtraAction(
        "post", lambda w: "/api/insights/surveys/999999/send/", _INSIGHTS
    ),
}

# API URLs outside the resources above: name -> the status a GET gets, per role.
_PUBLIC = dict.fromkeys(ROLES, 200)
OTHER_URLS: dict[str, dict[str, int]] = {
    "api-root": {**dict.fromkeys(ROLES, 200), "anonymous": 403},
    "api-schema": _PUBLIC,
    "api-docs": _PUBLIC,
}


@dataclass
class World:
    users: dict
    account: object
    customer: object
    product: object
    purchase: object
    event: object
    note: object
    consent: object
    purpose: object
    segment: object
    data_request: object
    data_export: object
    ml_segment: object
    campaign: object
    pipeline: object = None
    stage: object = None
    deal: object = None
    deal_line: object = None
    activity: object = None
    forecast_target: object = None
    saved_view: object = None
    journey: object = None
    journey_step: object = None
    journey_enrolment: object = None
    bulk_job: object = None


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


@pytest.fixture(autouse=True)
def _exports_in_a_temporary_folder(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Seven users per test: the production hasher would spend seconds on each test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(make_user, sales_user, other_sales_user, marketing_user, privacy_user, superuser):
    owner = sales_user
    account = AccountFactory(owner=owner)
    customer = CustomerFactory(owner=owner, account=account)
    pipeline = pipeline_make()
    deal = deal_make(owner=owner, account=account, customer=customer)
    product = ProductFactory()
    built = World(
        users={
            "anonymous": None,
            "no_role": make_user("nora.norole"),
            "sales_owner": owner,
            "other_sales": other_sales_user,
            "marketing": marketing_user,
            "privacy": privacy_user,
            "superuser": superuser,
        },
        account=account,
        customer=customer,
        product=product,
        purchase=PurchaseFactory(customer=customer, amount=Decimal("10.00")),
        event=EventFactory(customer=customer),
        note=NoteFactory(customer=customer, author=owner),
        consent=consent_grant(customer=customer, purpose="email_marketing", source="staff"),
        purpose=Purpose.objects.get(code="email_marketing"),
        segment=MembershipFactory(customer=customer).segment,
        data_request=DataSubjectRequestFactory(customer=customer, type=RequestType.ACCESS),
        data_export=DataExport.objects.create(customer=customer, requested_by=owner),
        campaign=_draft_campaign(),
        ml_segment=MLSegment.objects.create(name="Clusters", features=["rfm"]),
        saved_view=SavedView.objects.create(
            owner=owner, list_name="deals", name="Mine", query={"owner": str(owner.pk)}
        ),
        bulk_job=BulkJob.objects.create(
            list_name="customers", action="add_tag", params={"tag": "Fair"}, created_by=owner
        ),
        pipeline=pipeline,
        stage=pipeline.stages.get(name="Lost"),
        deal=deal,
        deal_line=DealLine.objects.create(
            deal=deal, product=ProductFactory(), price=Decimal("5.00")
        ),
        activity=activity_make(author=owner, deal=deal),
        forecast_target=ForecastTarget.objects.create(
            owner=owner, month=dt.date(2026, 4, 1), amount=Decimal("5000.00")
        ),
    )
    built.journey, built.journey_step, built.journey_enrolment = _journey_with_a_test_run(
        marketing_user
    )
    return built


def _journey_with_a_test_run(marketer):
    from journeys.services import journey_create, journey_test_start, step_add

    journey = journey_create(actor=marketer, name="Welcome", trigger="manual")
    step = step_add(journey=journey, actor=marketer, kind="exit")
    enrolment = journey_test_start(journey=journey, actor=marketer, customer=CustomerFactory())
    return journey, step, enrolment


def _draft_campaign():
    from campaigns.models import Campaign

    return Campaign.objects.create(name="Draft campaign", consent_purpose_id="email_marketing")


def _api_url_names() -> set[str]:
    """Names of every URL pattern under /api/, found by walking the project's URL resolver."""
    names: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/") and pattern.name:
                names.add(pattern.name)

    walk(get_resolver().url_patterns, "")
    return names


def _row(model, pk) -> dict | None:
    obj = model.objects.filter(pk=pk).first()
    return None if obj is None else model_to_dict(obj)


def _ids(response) -> list:
    items = response.data["results"] if isinstance(response.data, dict) else response.data
    return [item.get("id", item.get("code")) for item in items]


def test_every_api_url_has_a_row_in_the_role_table():
    known = {"api-root", *OTHER_URLS, *EXTRA_ACTIONS}
    for basename in ENDPOINTS:
        known |= {f"{basename}-list", f"{basename}-detail"}

    missing = _api_url_names() - known

    assert not missing, f"API URLs with no row in the role table: {sorted(missing)}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("prefix,basename", [(p, b) for p, _v, b in router.registry])
def test_role_reads_and_writes_only_what_it_may(world, api_client_for, prefix, basename, role):
    if basename not in ENDPOINTS:
        pytest.fail(f"/api/{prefix}/ ({basename}) has no row in ENDPOINTS: decide who may use it")
    spec = ENDPOINTS[basename]
    expect = dict(zip(ACTIONS, spec.expect[role], strict=True))
    client = api_client_for(world.users[role])
    obj = getattr(world, spec.obj)
    model = type(obj)
    list_url, detail_url = f"/api/{prefix}/", f"/api/{prefix}/{obj.pk}/"
    turned_away = {401, 403}
    absent = {404, 405} | (turned_away if role in ("anonymous", "no_role") else set())

    def check(action: str, response, unchanged) -> None:
        letter = expect[action]
        body = b"(streamed)" if response.streaming else response.content[:200]
        where = f"{role} {action} {basename}: got {response.status_code} {body!r}"
        if letter == "O":
            assert response.status_code in (200, 201, 202, 204), where
            return
        if letter == "E":
            assert response.status_code == 200, where
            assert obj.pk not in _ids(response), where
            return
        if letter == "D":
            assert response.status_code in turned_away, where
        elif letter == "H":
            if action == "create":
                assert response.status_code == 400, where
                assert spec.parent_field in response.data, where
            else:
                assert response.status_code == 404, where
        elif letter == "A":
            assert response.status_code in absent, where
        assert unchanged(), f"{where}: the data changed"

    # list
    response = client.get(list_url)
    check("list", response, lambda: True)
    if expect["list"] == "O":
        assert obj.pk in _ids(response), f"{role} does not see the {basename} in the list"
    # retrieve
    response = client.get(detail_url)
    check("retrieve", response, lambda: True)
    # create
    before = model.objects.count()
    response = client.post(list_url, spec.create(world), format="json")
    check("create", response, lambda: model.objects.count() == before)
    if expect["create"] == "O" and spec.creates:
        assert model.objects.count() == before + 1
    # update
    before_row = _row(model, obj.pk)
    response = client.patch(detail_url, spec.update, format="json")
    check("update", response, lambda: _row(model, obj.pk) == before_row)
    if expect["update"] == "O":
        field_name, value = next(iter(spec.update.items()))
        assert str(_row(model, obj.pk)[field_name]) == str(value)
    # delete
    response = client.delete(detail_url)
    check("delete", response, lambda: model.objects.filter(pk=obj.pk).exists())
    if expect["delete"] == "O":
        assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(EXTRA_ACTIONS))
def test_role_uses_only_the_custom_actions_it_may(world, api_client_for, name, role):
    spec = EXTRA_ACTIONS[name]
    client = api_client_for(world.users[role])
    letter = spec.expect[role]

    response = getattr(client, spec.method)(spec.path(world), spec.payload(world), format="json")

    body = b"".join(response.streaming_content) if response.streaming else response.content
    where = f"{role} {name}: got {response.status_code} {body[:200]!r}"
    if letter == "D":
        assert response.status_code in (401, 403), where
        return
    assert response.status_code not in (401, 403) and response.status_code < 500, where
    if spec.shows_customer:
        assert response.status_code == 200, where
        shown = str(world.customer.pk) in _member_ids(response, body)
        assert shown == (letter == "O"), where


def _member_ids(response, body: bytes) -> set[str]:
    if response.get("Content-Type", "").startswith("text/csv"):
        return {line.split(",")[0] for line in body.decode().splitlines()[1:]}
    return {str(item["id"]) for item in response.json()["results"]}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(OTHER_URLS))
def test_other_api_urls_answer_each_role_as_the_table_says(world, api_client_for, name, role):
    from django.urls import reverse

    response = api_client_for(world.users[role]).get(reverse(name))

    assert response.status_code == OTHER_URLS[name][role]


@pytest.mark.django_db
def test_consent_ledger_has_no_way_to_change_a_record(world, api_client_for):
    client = api_client_for(world.users["superuser"])
    record = world.consent

    responses = [
        client.put(f"/api/consents/{record.pk}/", {"state": "withdrawn"}, format="json"),
        client.patch(f"/api/consents/{record.pk}/", {"state": "withdrawn"}, format="json"),
        client.delete(f"/api/consents/{record.pk}/"),
    ]

    assert {r.status_code for r in responses} <= {404, 405}
    assert ConsentRecord.objects.get(pk=record.pk).state == "granted"


@pytest.mark.django_db
def test_sales_see_every_customer_when_the_setting_opens_them(world, api_client_for, settings):
    settings.CRM_SALES_SEE_ALL = True
    client = api_client_for(world.users["other_sales"])

    response = client.get(f"/api/customers/{world.customer.pk}/")

    assert response.status_code == 200
