"""Hostile input to every HTML page: whatever a browser (or someone with curl) sends, no page
answers 5xx or raises.

The pages are the URL patterns of the root urlconf, less the REST API (tests/crm/test_api_fuzz.py
fuzzes it from its schema) and the admin (one check of its changelists below); SKIPPED lists
any other left out, with the reason. Each page is reached with its path filled with objects that
exist (so the view's real code runs) and with absurd values (0, 2**63, -1, a NUL; for signed
links, a genuine signature over an id that does not exist).

The parameters a page is sent are the ones the product itself uses for it: the field names of
the forms whose action is the page and the query-string keys of the links (href, hx-get, hx-post)
to it, found by reading every page once as a superuser (`page_inputs`), plus COMMON_PARAMETERS.
As an anonymous visitor and as each role (the superuser last, as its POSTs may delete what the
others would see), a page gets:

- GET: for each hostile value, every parameter set to it at once; where that answers other than
  the page without parameters does (a 400 for one bad parameter could hide what the others do),
  each parameter alone. The page's own htmx targets are also asked for, as htmx.
- POST: for each form of the page, every field set to each hostile value at once; and each
  field alone with the values of POST_ONE_FIELD_VALUES while the others keep the values the
  form shows, so that the request gets past the other fields' checks. A page without a form
  gets the common parameters as its body.

To stay within about a minute on PostgreSQL: all the values go to the first visitor a page lets
in, the later ones (the same code over other rows) get FEW_VALUES and no one-field POSTs; a
visitor turned away (sign-in, 403, 404, 405) gets one hostile request; the absurd paths are
tried as the anonymous visitor and the superuser.

Values reach the server as a browser would send them: percent-encoded UTF-8 (a lone surrogate
as its raw bytes, which Django decodes as U+FFFD, as it does any invalid UTF-8).
"""

import re
import traceback
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from campaigns.links import click_url, open_url, unsubscribe_token
from campaigns.models import Campaign, Send
from campaigns.views import STEPS
from crm.roles import Role
from customers.models import ImportJob
from deals.services import deal_move
from insights.models import Survey
from insights.services.surveys import survey_token
from journeys.services import journey_test_start
from privacy.exports import data_export_token
from privacy.links import confirmation_token, preference_token
from privacy.models import DataExport, PendingConsent, RequestType
from privacy.services import consent_grant
from segments.ml.models import Cluster, MLJob, MLSegment
from tests.campaigns.factories import CampaignFactory, VariantFactory, members_add
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    NoteFactory,
    PurchaseFactory,
)
from tests.deals.factories import activity_make, deal_make, pipeline_make
from tests.journeys.factories import welcome_journey
from tests.privacy.factories import DataSubjectRequestFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory

HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "\U0010ffff",
    "\ud7ff",
    "\ud800",  # a lone surrogate: sent as its raw bytes
    "-1",
    "0",
    "99999999999999999999",
    "1e309",
    "nan",
    "2026-02-30",
    " ",
    "x" * 5000,
    "'; DROP TABLE",
    "=cmd|' /C calc'!A0",
]
# The values for the roles after the first that may use a page (they see the same code).
FEW_VALUES = ["a\x00b", "99999999999999999999", "2026-02-30", "\ud800"]
# The values each form field gets alone, the form's other fields keeping their shown values.
POST_ONE_FIELD_VALUES = ["a\x00b", "99999999999999999999", "2026-02-30", "x" * 5000]

COMMON_PARAMETERS = ["q", "after", "page", "sort", "size", "ordering", "version", "variant",
                     "customer", "closed"]  # fmt: skip

# URL names left out, each with the reason.
SKIPPED: dict[str, str] = {
    "logout": "ends the session and reads no input",
}
# Prefixes of the root urlconf that are not HTML pages of the product.
NOT_PAGES = ("api/", "admin/", "static/", "media/")

ROLES = ["anonymous", "sales", "marketing", "privacy", "superuser"]

BIG = 2**63
# The top bar's search results: on every page, filled by customers:search, not by the page.
TOP_BAR_SEARCH = "global-search-results"
ROOT = str(settings.BASE_DIR) + "/"


# The URL patterns -------------------------------------------------------------------------------


def _patterns(resolver=None, prefix="", namespace=""):
    """(view name, route) of every pattern of the root urlconf, routes joined as written."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, route, inner)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or route}", route


PATTERNS = {
    name: route for name, route in _patterns() if not route.startswith(NOT_PAGES)
}  # fmt: skip
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def _url(route: str, kwargs: dict) -> str:
    def fill(match: re.Match) -> str:
        return quote(str(kwargs[match["name"]]), safe="")

    return "/" + PARAMETER.sub(fill, route)


# The objects the pages show ---------------------------------------------------------------------


def _users() -> dict:
    user_model = get_user_model()
    users = {"anonymous": None}
    for role in (Role.SALES, Role.MARKETING, Role.PRIVACY):
        user = user_model.objects.create_user(username=f"fuzz.{role}", password="x" * 12)
        user.groups.add(Group.objects.get(name=role))
        users[str(role)] = user
    users["superuser"] = user_model.objects.create_superuser(
        username="fuzz.admin", password="x" * 12, email="fuzz.admin@staff.example"
    )
    return users


def world_build(users: dict) -> dict:
    """One object of each kind a page's path names, owned where it matters by the sales user."""
    sales = users["sales"]
    account = AccountFactory(owner=sales)
    customer = CustomerFactory(owner=sales, account=account)
    PurchaseFactory(customer=customer, amount=Decimal("10.00"))
    consent_grant(customer=customer, purpose="email_marketing", source="staff")
    segment = SegmentFactory(name="Germans")
    static = StaticSegmentFactory(name="Readers")
    members_add(static, [customer])
    campaign = CampaignFactory(created_by=users["marketing"])
    campaign.target_segments.add(static)
    variant = VariantFactory(campaign=campaign, name="A")
    sent = CampaignFactory(created_by=users["marketing"], status=Campaign.Status.SENT)
    sent.target_segments.add(static)
    now = timezone.now()
    send = Send.objects.create(
        campaign=sent,
        customer=customer,
        variant=VariantFactory(campaign=sent, name="B"),
        status=Send.Status.SENT,
        created_at=now,
        sent_at=now,
    )
    ml_segment = MLSegment.objects.create(name="Clusters", features=["rfm"])
    cluster = Cluster.objects.create(
        ml_segment=ml_segment, label=0, segment=SegmentFactory(name="Cluster 0"), name="Cluster 0"
    )
    dsr = DataSubjectRequestFactory(customer=customer, type=RequestType.ACCESS)
    export = DataExport.objects.create(
        customer=customer, requested_by=users["privacy"], status=DataExport.Status.DONE
    )
    export.file.save("export.zip", ContentFile(b"PK\x05\x06" + bytes(18)))
    job = ImportJob.objects.create(
        kind="customers", file="imports/x.csv", created_by=sales, status="done"
    )
    job.error_report.save("errors.csv", ContentFile(b"row,error\n2,email: not valid\n"))
    survey = Survey.objects.create(
        name="Pulse", kind="nps", question="Recommend us?", segment=static, campaign=sent
    )
    pending = PendingConsent.objects.create(
        customer=customer, purpose_id="email_marketing", source="form", requested_at=now
    )
    pipeline = pipeline_make()
    deal = deal_make(owner=sales, account=account, customer=customer)
    deal_move(deal=deal, stage=pipeline.stages.get(name="Proposal"), actor=sales)
    activity = activity_make(
        author=sales,
        deal=deal,
        assignee=sales,
        due_date=timezone.localdate(),
    )
    activity_make(author=sales, customer=customer)
    journey = welcome_journey(segment=static, actor=users["marketing"])
    enrolment = journey_test_start(journey=journey, actor=users["marketing"], customer=customer)
    return {
        "journey": journey,
        "journey_step": journey.steps.get(position=3),
        "enrolment": enrolment,
        "deal": deal,
        "activity": activity,
        "customer": customer,
        "account": account,
        "note": NoteFactory(customer=customer, author=sales),
        "import": job,
        "segment": segment,
        "static_segment": static,
        "campaign": campaign,
        "sent_campaign": sent,
        "variant": variant,
        "send": send,
        "ml_segment": ml_segment,
        "ml_job": MLJob.objects.create(kind=MLJob.Kind.TRAIN, ml_segment=ml_segment),
        "cluster": cluster,
        "dsr": dsr,
        "export": export,
        "pending": pending,
        "survey": survey,
    }


# Signed links of the public pages, by view name: the token for an id.
SIGNED = {
    "privacy:preference_centre": lambda pk: preference_token(customer_id=pk),
    "privacy:preference_unsubscribe": lambda pk: preference_token(customer_id=pk),
    "privacy:preference_request": lambda pk: preference_token(customer_id=pk),
    "privacy:consent_confirm": lambda pk: confirmation_token(pending_id=pk),
    "privacy:export_download": lambda pk: data_export_token(export=DataExport(pk=pk)),
    "campaigns:unsubscribe": lambda pk: unsubscribe_token(send_id=pk),
    "insights:survey_answer": lambda pk: survey_token(send_id=pk),
    "campaigns:track_open": lambda pk: open_url(send_id=pk).rsplit("/", 1)[-1],
    "campaigns:track_click": lambda pk: (
        click_url(send_id=pk, url="https://shop.example/sale").rstrip("/").rsplit("/", 1)[-1]
    ),
}
# Which objects of the world fill `pk`, by the view name's start.
PK_OBJECTS = {
    "journeys:step_": "journey_step",
    "journeys:enrolment_": "enrolment",
    "journeys:": "journey",
    "deals:activity_": "activity",
    "deals:": "deal",
    "customers:note_": "note",
    "customers:account_": "account",
    "customers:customer_": "customer",
    "customer_import:": "import",
    "privacy:request_": "dsr",
    "privacy:consent_record": "customer",
    "privacy:preference_link": "customer",
    "segments_ml:job": "ml_job",
    "segments_ml:cluster_": "cluster",
    "segments_ml:": "ml_segment",
    "segments:": ("segment", "static_segment"),
    "campaigns:": ("campaign", "sent_campaign"),
    "insights:survey_": "survey",
}
SIGNED_IDS = {
    "privacy:preference_centre": "customer",
    "privacy:preference_unsubscribe": "customer",
    "privacy:preference_request": "customer",
    "privacy:consent_confirm": "pending",
    "privacy:export_download": "export",
    "campaigns:unsubscribe": "send",
    "insights:survey_answer": "send",
    "campaigns:track_open": "send",
    "campaigns:track_click": "send",
}
CAMPAIGN_ACTIONS = ["pause", "resume", "cancel", "stop", "launch"]


def real_kwargs(name: str, route: str, world: dict) -> list[dict]:
    """Path values of objects that exist; one dict per path to try."""
    names = [m["name"] for m in PARAMETER.finditer(route)]
    if not names:
        return [{}]
    found = [{}]
    if "pk" in names:
        keys = next(obj for start, obj in PK_OBJECTS.items() if name.startswith(start))
        keys = (keys,) if isinstance(keys, str) else keys
        found = [{"pk": world[key].pk} for key in keys]
    if "token" in names:
        found = [{"token": SIGNED[name](world[SIGNED_IDS[name]].pk)}]
    if "step" in names:
        found = [{**kwargs, "step": step} for kwargs in found for step in STEPS]
    if "action" in names:
        found = [{**kwargs, "action": action} for kwargs in found for action in CAMPAIGN_ACTIONS]
    missing = set(names) - set(found[0])
    assert not missing, f"{name}: no real value for {missing}; add one to real_kwargs"
    return found


def absurd_kwargs(name: str, route: str, real: dict) -> list[dict]:
    """Each path value in turn replaced by an absurd one (the others kept real)."""
    found = []
    for match in PARAMETER.finditer(route):
        key = match["name"]
        values = [0, BIG, -1] if match["converter"] == "int" else ["0", str(BIG), "-1", "a\x00b"]
        if key == "token":
            values += [SIGNED[name](pk) for pk in (0, BIG, -1)]
        found += [{**real, key: value} for value in values]
    return found


# What the pages send back -----------------------------------------------------------------------


class PageInputs(HTMLParser):
    """The forms of a page (action, method, fields with the values shown) and the query-string
    keys of its links, by the URL they go to; and the ids htmx swaps into."""

    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[dict] = []
        self.links: list[str] = []
        self.htmx_targets: set[str] = set()
        self._form = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for attribute in ("href", "hx-get", "hx-post", "action", "formaction"):
            if attrs.get(attribute) and attribute != "action":
                self.links.append(attrs[attribute])
        target = attrs.get("hx-target", "")
        if target.startswith("#"):
            self.htmx_targets.add(target[1:])
        if tag == "form":
            self._form = {
                "action": attrs.get("action") or attrs.get("hx-post") or self.page_url,
                "method": (
                    attrs.get("method") or ("post" if "hx-post" in attrs else "get")
                ).lower(),
                "fields": {},
            }
            self.forms.append(self._form)
            return
        name = attrs.get("name")
        if self._form is None or not name:
            return
        fields = self._form["fields"]
        if tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                fields.setdefault(name, None)
            elif kind != "file":
                if fields.get(name) is None:
                    fields[name] = attrs.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select":
            fields.setdefault(name, None)
        elif tag == "textarea":
            self._textarea = name
            fields[name] = ""
        elif tag == "button":
            fields.setdefault(name, None)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None


class _Options(HTMLParser):
    """The value each select shows (its selected option, else its first)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._select = None
        self._chosen = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._select, self._chosen = attrs.get("name"), False
        elif tag == "option" and self._select and attrs.get("value") is not None:
            if "selected" in attrs or self._select not in self.values:
                if not self._chosen:
                    self.values[self._select] = attrs["value"]
                self._chosen = self._chosen or "selected" in attrs

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


OBJECT_KWARGS = {"pk", "token"}


def _target(url: str, page_url: str) -> tuple[str, tuple] | tuple[None, None]:
    """The view name a URL of a page goes to, and its path values other than object ids."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return None, None
    path = parts.path or urlsplit(page_url).path
    if not path.startswith("/"):
        return None, None
    try:
        match = resolve(path)
    except Resolver404:
        return None, None
    return match.view_name, _variant(match.kwargs)


def _variant(kwargs: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in kwargs.items() if k not in OBJECT_KWARGS))


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _read(html: str, page_url: str, found: dict) -> None:
    parser = PageInputs(page_url)
    parser.feed(html)
    options = _Options()
    options.feed(html)
    here, _ = _target(page_url, page_url)
    if here:
        found.setdefault(here, _empty())["htmx_targets"] |= parser.htmx_targets
    for link in parser.links:
        name, _ = _target(link, page_url)
        if name:
            found.setdefault(name, _empty())["get"] |= {
                k for k, _ in parse_qsl(urlsplit(link).query)
            }
    for form in parser.forms:
        name, variant = _target(form["action"], page_url)
        if not name:
            continue
        fields = {
            k: options.values.get(k, "") if v is None else v for k, v in form["fields"].items()
        }
        if form["method"] == "get":
            found.setdefault(name, _empty())["get"] |= set(fields)
        elif (
            fields
            and (variant, frozenset(fields)) not in found.setdefault(name, _empty())["post_seen"]
        ):
            found[name]["post_seen"].add((variant, frozenset(fields)))
            found[name]["post"].append((variant, fields))


def _empty() -> dict:
    return {"get": set(), "post": [], "post_seen": set(), "htmx_targets": set()}


@pytest.fixture(scope="module")
def page_inputs(django_db_setup, django_db_blocker, tmp_path_factory):
    """The inputs the pages themselves offer, by view name: every page read once as superuser."""
    found: dict[str, dict] = {}
    with (
        django_db_blocker.unblock(),
        override_settings(**_SETTINGS, MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))),
        transaction.atomic(),
    ):
        users = _users()
        world = world_build(users)
        client = Client()
        client.force_login(users["superuser"])
        for name, route in PATTERNS.items():
            for kwargs in real_kwargs(name, route, world):
                url = _url(route, kwargs)
                response = client.get(url)
                if "html" in response.get("Content-Type", ""):
                    _read(_body(response).decode(errors="replace"), url, found)
        transaction.set_rollback(True)
    return found


# Sending it back, with hostile values -----------------------------------------------------------

_SETTINGS = {
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "CAMPAIGNS_SITE_URL": "http://testserver",
    "CAMPAIGNS_RATE_PER_SECOND": 0,
    "CELERY_TASK_ALWAYS_EAGER": True,
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


def _encode(pairs) -> str:
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in pairs
    )


def _short(text: str) -> str:
    return (text[:60] + f"...({len(text)})") if len(text) > 60 else text


def _app_frame(exc: BaseException) -> str:
    """The last line of the product's own code the exception passed through."""
    frames = [
        f"{frame.filename.removeprefix(ROOT)}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.startswith(ROOT)
        and "/.venv/" not in frame.filename
        and "/tests/" not in frame.filename
    ]
    return frames[-1] if frames else "?"


def _denied(response) -> bool:
    """Whether the answer only says this visitor may not use the page (nothing was read)."""
    if response.status_code in (401, 403):
        return True
    return response.status_code == 302 and response["Location"].startswith("/login/")


class Sweep:
    """Sends requests, and keeps every one that answered 5xx or raised."""

    def __init__(self, client: Client):
        self.client = client
        self.failures: list[str] = []
        self.requests = 0

    def send(self, method: str, url: str, pairs: dict, headers: dict | None = None):
        """The response, or None when the request failed (the failure is kept)."""
        encoded = _encode(pairs.items())
        where = f"{method} {_short(url)} {_short(repr(dict(pairs)))}"
        self.requests += 1
        try:
            # A savepoint, so that a request the database refused leaves the test's
            # transaction usable for the next ones.
            with transaction.atomic():
                if method == "GET":
                    response = self.client.get(
                        f"{url}?{encoded}" if encoded else url, headers=headers
                    )
                else:
                    response = self.client.post(
                        url,
                        encoded,
                        content_type="application/x-www-form-urlencoded",
                        headers=headers,
                    )
                _body(response)
        except Exception as exc:
            self.failures.append(f"{where} raised {exc!r} at {_app_frame(exc)}")
            return None
        if response.status_code >= 500:
            self.failures.append(f"{where}: {response.status_code}")
            return None
        return response

    def get(self, url, parameters, values, headers=None, *, absurd=False) -> bool:
        """GET the page with hostile parameters; whether it let this visitor in."""
        baseline = self.send("GET", url, {}, headers)
        if absurd and (baseline is None or baseline.status_code >= 300):
            return False
        if baseline is None or _denied(baseline) or baseline.status_code >= 400:
            # Turned away before any parameter is read (no such object, not allowed): once is
            # enough.
            self.send("GET", url, dict.fromkeys(parameters, "a\x00b"), headers)
            return False
        for value in values:
            response = self.send("GET", url, dict.fromkeys(parameters, value), headers)
            if response is not None and response.status_code != baseline.status_code:
                for parameter in parameters:
                    self.send("GET", url, {parameter: value}, headers)
        return True

    def post(self, url: str, forms: list[dict], values: list[str], *, one_field: bool) -> bool:
        """POST the forms with hostile values; whether the page let this visitor in."""
        if not forms:
            self.send("POST", url, dict.fromkeys(COMMON_PARAMETERS, "a\x00b"))
            return False
        allowed = False
        for fields in forms:
            first = self.send("POST", url, dict.fromkeys(fields, values[0]))
            if first is not None and (_denied(first) or first.status_code in (404, 405)):
                continue
            allowed = True
            for value in values[1:]:
                self.send("POST", url, dict.fromkeys(fields, value))
            for field in sorted(set(fields) - {"csrfmiddlewaretoken"}) if one_field else ():
                for value in POST_ONE_FIELD_VALUES:
                    self.send("POST", url, {**fields, field: value})
        return allowed


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    for key, value in _SETTINGS.items():
        setattr(settings, key, value)
    users = _users()
    return {"users": users, **world_build(users)}


def _cases() -> list:
    return [name for name in PATTERNS if name not in SKIPPED]


def test_the_pages_left_out_exist():
    """SKIPPED names pages of the urlconf, so a renamed page is fuzzed, not silently dropped."""
    assert set(SKIPPED) <= set(PATTERNS)


@pytest.mark.django_db
@pytest.mark.parametrize("name", _cases())
def test_page_answers_hostile_input_without_server_errors(world, page_inputs, name):
    route = PATTERNS[name]
    inputs = page_inputs.get(name, _empty())
    parameters = sorted(set(COMMON_PARAMETERS) | inputs["get"])
    real = real_kwargs(name, route, world)
    paths = [_url(route, kwargs) for kwargs in real]
    paths += [_url(route, kwargs) for kwargs in absurd_kwargs(name, route, real[0])]
    sweep = Sweep(Client())

    # Every value for the first role the page lets in and for the superuser; the roles in
    # between see the same code with other rows, and get a few.
    one_field = True  # each field alone: for the first role the page lets in
    full = True
    for role in ROLES:  # the superuser last: a POST may delete what the others would see
        cache.clear()  # throttle counts
        sweep.client.logout()
        if world["users"][role] is not None:
            sweep.client.force_login(world["users"][role])
        values = HOSTILE_VALUES if full else FEW_VALUES
        # Absurd path values as a visitor and as the superuser, who may see every object.
        tried = paths if role in ("anonymous", "superuser") else paths[: len(real)]
        for number, url in enumerate(tried):
            if number >= len(real):  # an absurd path: whether it is found at all matters
                sweep.get(url, parameters, FEW_VALUES[:1], absurd=True)
            elif sweep.get(url, parameters, values) and number == 0:
                full = False
                for target in sorted(inputs["htmx_targets"] - {TOP_BAR_SEARCH}):
                    headers = {"HX-Request": "true", "HX-Target": target}
                    sweep.get(url, parameters, FEW_VALUES, headers)
        for number, url in enumerate(tried):
            kwargs = real[number] if number < len(real) else {}
            forms = [f for v, f in inputs["post"] if number < len(real) and v == _variant(kwargs)]
            if sweep.post(
                url, forms, HOSTILE_VALUES if one_field else FEW_VALUES, one_field=one_field
            ):
                one_field = False

    assert not sweep.failures, f"{len(sweep.failures)} of {sweep.requests} failed:\n" + "\n".join(
        sweep.failures[:40]
    )


@pytest.mark.django_db
def test_admin_changelists_answer_hostile_searches_and_filters(admin_client):
    sweep = Sweep(admin_client)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        page = admin_client.get(url)
        parser = PageInputs(url)
        parser.feed(page.content.decode(errors="replace"))
        keys = {k for link in parser.links if link.startswith("?") for k, _ in parse_qsl(link[1:])}
        for value in ("\x00", "a\x00b", "\ud800", "99999999999999999999", "2026-02-30"):
            sweep.send("GET", url, {"q": value})
            sweep.send("GET", url, dict.fromkeys(keys - {"o", "p", "q"}, value))

    assert not sweep.failures, "\n".join(sweep.failures)


def test_every_page_has_real_path_values():
    """A new page with a path value gets an object here, so its view's code is fuzzed too."""
    for name, route in PATTERNS.items():
        if name not in SKIPPED and "<" in route:
            assert name in SIGNED or any(name.startswith(s) for s in PK_OBJECTS), name
