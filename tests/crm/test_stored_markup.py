"""Stored text never acts in a staff member's browser.

Customers type their names into the public signup form, imports bring files from anywhere,
the API takes what it is given: every text the product stores may hold markup. Here every free
text field of every row a page can show (names, notes, custom attributes, event properties, import
messages and file names, request fields, segment, campaign and variant texts, ...) holds hostile
markup, each piece tagged with the marker "xss":

- an element with htmx attributes that would cancel a campaign the moment it is shown,
- an image whose error handler runs script,
- markup that first closes the attribute it may be printed in.

Every page of the product (the URL patterns test_page_fuzz sweeps, with the same real objects)
is read as each role, and every htmx fragment a page asks for (its hx-get elements and forms,
with the values they show) is read as htmx would ask for it. In what comes back, no element may
come from the data: no element the markup makes, no hx-* or URL attribute it sets, no on*
handler at all (the product has none; the CSP forbids them), no javascript: link. The only
document that may hold the message author's markup is the campaign preview's frame, and it must
arrive sandboxed with a CSP of its own that allows no script.

Each page also configures htmx once, as crm.htmx says (no eval, no scripts in swapped content,
no requests to other origins, no page copies in session storage, no requests from elements
without the session's key), and every request element the product wrote carries that key.
"""

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.cache import cache
from django.db import models
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from campaigns.models import Campaign, MessageEvent
from crm.api.urls import router
from crm.htmx import REQUEST_ATTRIBUTES
from customers.models import Tag
from privacy.models import BulkConsentJob
from segments.models import Segment
from tests.crm.test_page_fuzz import (
    _SETTINGS,
    PATTERNS,
    ROLES,
    SKIPPED,
    _body,
    _url,
    _users,
    real_kwargs,
    world_build,
)
from tests.customers.factories import EventFactory, NoteFactory, ProductFactory, PurchaseFactory

MARK = "xss"


def cancel_markup(campaign_id: int) -> str:
    """A customer named with htmx markup: shown in a marketer's page, htmx would cancel the campaign."""
    return (
        f'<i hx-post="/campaigns/{campaign_id}/cancel/?{MARK}" hx-trigger="load" '
        f'id="{MARK}-hx">x</i>'
    )


IMAGE = f"<img src={MARK} onerror=alert(1) id={MARK}-img>"
BREAKOUT = f"\"'><svg onload=alert(1) id={MARK}-svg>"
TINY = f"<b id={MARK}-b>"
LINK = f"javascript:alert(1)//{MARK}"

# Fields that steer the product rather than hold text someone typed: hashes, codes, file paths,
# identifiers of other rows, template sources checked elsewhere, the stored rule trees.
NOT_TEXT = {
    "customers.Customer": {"email_hash", "phone_hash", "country", "language"},
    "customers.Purchase": {"dedup_key", "currency"},
    "customers.Account": {"country"},
    "customers.ImportJob": {"file", "error_report", "options"},
    "privacy.Purpose": {"code"},
    "privacy.Suppression": {"value_hash"},
    "privacy.ErasureLog": {"email_hash", "phone_hash"},
    "privacy.DataExport": {"file"},
    "segments.Segment": {"slug", "rule"},
    "segments.MLSegment": {"features", "attribute_keys"},
    "segments.ModelVersion": {"features", "algorithm", "metrics", "profiles", "projection"},
    "segments.Cluster": {"profile"},
    "segments.MLJob": {"options"},
    "segments.RfmRun": {"moves", "thresholds", "trigger"},
    "segments.PredictiveModel": {"features", "metrics"},
    "segments.RefreshRun": {"task_id"},
    "campaigns.Campaign": {"time_zone", "exclusions"},
    "privacy.AuditEntry": {"action"},
}
# Free-form JSON a person fills: custom attributes, event properties.
DATA_JSON = {"customers.Customer": {"attributes"}, "customers.Event": {"properties"}}
PROJECT_APPS = ("customers", "privacy", "deals", "segments", "campaigns")


def hostile_text(field: models.Field, campaign_id: int) -> str | None:
    """The most hostile markup that fits the field, or None when even the smallest does not."""
    if isinstance(field, models.URLField):
        return LINK
    if isinstance(field, models.EmailField):
        return f'"{BREAKOUT}"@example.com'
    pieces = [cancel_markup(campaign_id), IMAGE, BREAKOUT]
    limit = field.max_length or 10_000
    text = ""
    for piece in pieces:
        if len(text + piece) + 3 <= limit:
            text += piece
    if not text and len(TINY) + 3 <= limit:
        text = TINY
    return text or None


def stored_text_fields(model) -> list[models.Field]:
    skip = NOT_TEXT.get(model._meta.label, set())
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField)
        and not field.choices
        and not field.primary_key
        and field.name not in skip
    ]


def stored_markup_fill(campaign_id: int) -> None:
    """Every free text field of every row of the product holds hostile markup."""
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        changes = {}
        for field in stored_text_fields(model):
            text = hostile_text(field, campaign_id)
            if text is not None:
                changes[field.name] = text
        for name in DATA_JSON.get(model._meta.label, ()):
            changes[name] = {
                f"{MARK}_{BREAKOUT}": cancel_markup(campaign_id),
                "image": IMAGE,
                "list": [BREAKOUT],
            }
        if not changes:
            continue
        for number, pk in enumerate(model.objects.values_list("pk", flat=True)):
            # Each row's texts differ, so that unique fields stay unique.
            row = {
                name: f"{value}{number}" if isinstance(value, str) else value
                for name, value in changes.items()
            }
            # A plain QuerySet: append-only models refuse updates through their own.
            models.QuerySet(model).filter(pk=pk).update(**row)


def hostile_world(users: dict) -> dict:
    """test_page_fuzz's world (one object of each kind a page names), a few more rows pages
    show, and then hostile markup in every text of every row."""
    world = world_build(users)
    customer, account = world["customer"], world["account"]
    EventFactory(customer=customer, type="page_view", properties={"path": "/"})
    NoteFactory(customer=None, account=account, author=users["sales"])
    tag = Tag.objects.create(name="vip")
    customer.tags.add(tag)
    PurchaseFactory(customer=customer, product=ProductFactory())
    MessageEvent.objects.create(
        send=world["send"], kind=MessageEvent.Kind.CLICK, at=timezone.now(),
        url="https://shop.example/sale", detail="clicked",
    )  # fmt: skip
    BulkConsentJob.objects.create(
        purpose_id="email_marketing", state="granted", evidence="x", identifiers="x",
        created_by=users["privacy"],
    )  # fmt: skip
    campaign = world["campaign"]
    stored_markup_fill(campaign.pk)
    # A rule that names hostile text, and message templates that also print the customer's.
    Segment.objects.filter(pk=world["segment"].pk).update(
        rule={"field": "city", "op": "eq", "value": BREAKOUT + IMAGE}
    )
    hostile = cancel_markup(campaign.pk) + IMAGE
    for variant in campaign.variants.all():
        variant.subject = f"{BREAKOUT} {{{{ customer.first_name }}}}"
        variant.html = f"<p>{hostile} {{{{ customer.first_name }}}} {{{{ customer.city }}}}</p>"
        variant.text = f"{hostile} {{{{ customer.first_name }}}}"
        variant.save(update_fields=["subject", "html", "text"])
    return world


# Reading what comes back ------------------------------------------------------------------------

INJECTED_IDS = {f"{MARK}-hx", f"{MARK}-img", f"{MARK}-svg", f"{MARK}-b"}
URL_ATTRIBUTES = {"src", "href", "action", "formaction", "srcdoc", "data", "poster", "xlink:href"}


class LiveMarkup(HTMLParser):
    """Elements and attributes of a page that came from the stored data; and what htmx would
    request from the page (its hx-get elements and forms, with the values they show)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.requests: list[tuple[str, dict, str]] = []
        self.frames: list[str] = []
        self.htmx_configs: list[str] = []
        self.htmx_scripts = 0
        self.request_elements: list[tuple[str, str | None]] = []  # (element, its data-hx-key)
        self._form: dict | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        values = {name: value or "" for name, value in attrs}
        shown = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in values.items())}>"[:200]
        for name, value in values.items():
            if name.startswith("on"):
                self.found.append(f"event handler {name}: {shown}")
            elif name == "id" and value in INJECTED_IDS:
                self.found.append(f"element from the data: {shown}")
            elif name.startswith(("hx-", "data-hx-")) and f"?{MARK}" in value:
                self.found.append(f"htmx attribute from the data: {shown}")
            elif name in URL_ATTRIBUTES and (
                value == MARK
                or f"?{MARK}" in value
                or value.strip().lower().startswith("javascript:")
            ):
                self.found.append(f"{name} from the data: {shown}")
        if tag == "meta" and values.get("name") == "htmx-config":
            self.htmx_configs.append(values.get("content", ""))
        if tag == "script" and "htmx" in values.get("src", ""):
            self.htmx_scripts += 1
        if any(name in values for name in REQUEST_ATTRIBUTES):
            self.request_elements.append((shown, values.get("data-hx-key")))
        if tag in ("iframe", "frame", "object", "embed"):
            self.frames.append(values.get("src") or values.get("data") or "")
            sandbox = values.get("sandbox")
            if sandbox is None or "allow-scripts" in sandbox or "allow-same-origin" in sandbox:
                self.found.append(f"a frame that is not sandboxed: {shown}")
        self._htmx(tag, values)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def _htmx(self, tag: str, values: dict) -> None:
        name = values.get("name")
        if "hx-get" in values:
            own = {name: values.get("value", "")} if name and tag != "form" else {}
            self.requests.append((values["hx-get"], own, values.get("hx-target", "")))
            if tag == "form":
                self._form = own
        if self._form is None:
            return
        if tag == "option" and self._select and self._form.get(self._select) is None:
            self._form[self._select] = values.get("value", "")  # the option a select shows first
        elif tag == "select" and name:
            self._form.setdefault(name, None)
            self._select = name
        elif (
            tag in ("input", "textarea")
            and name
            and values.get("type") not in ("checkbox", "radio")
        ):
            self._form[name] = values.get("value", "")


def sandboxed_frame(response) -> bool:
    """Whether a response is a document of its own that runs no script and has no origin."""
    policy = response.headers.get("Content-Security-Policy", "")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";") if part.strip()
    )
    return (
        "sandbox" in directives
        and "allow-scripts" not in directives["sandbox"]
        and "allow-same-origin" not in directives["sandbox"]
        and directives.get("default-src") == "'none'"
        and "script-src" not in directives
    )


class MarkupSweep:
    """Reads pages as one visitor; keeps every place where stored markup came back live."""

    def __init__(self, client: Client, who: str):
        self.client = client
        self.who = who
        self.problems: list[str] = []
        self.pages = 0
        self.frames_read = 0
        self.htmx_key: str | None = None
        self.showing: set[str] = set()  # pages that show the hostile text (as text)
        self.seen: set[tuple] = set()

    def read(
        self, url: str, *, headers: dict | None = None, follow_htmx: bool = True, frame=False
    ) -> None:
        key = (url, tuple(sorted((headers or {}).items())))
        if key in self.seen:
            return
        self.seen.add(key)
        response = self.client.get(url, headers=headers)
        if frame:
            self.frames_read += 1
        if "html" not in response.get("Content-Type", "") or response.status_code >= 300:
            return
        self.pages += 1
        if sandboxed_frame(response):
            return  # the message author's own markup, in a frame that cannot act
        if frame:
            self.problems.append(f"{self.who} GET {url}: a framed document without a sandbox")
            return
        parser = LiveMarkup()
        body = _body(response).decode(errors="replace")
        parser.feed(body)
        if "&lt;img src=xss" in body or "&lt;i hx-post=" in body:
            self.showing.add(url.split("?")[0])
        self.problems += [f"{self.who} GET {url}: {found}" for found in parser.found]
        self._check_htmx(url, parser)
        for src in parser.frames:
            self.read(urljoin(url, src), frame=True)
        if not follow_htmx:
            return
        for target, fields, hx_target in parser.requests:
            absolute = urljoin(url, target)
            if urlsplit(absolute).netloc:
                continue
            query = urlencode({k: v for k, v in fields.items() if k})
            if "q" in fields:
                query = urlencode({**fields, "q": "<i"})  # a search that finds the hostile names
            htmx = {
                "HX-Request": "true",
                "HX-Target": hx_target.removeprefix("#") or "body",
                "HX-Current-URL": url,
            }
            separator = "&" if "?" in absolute else "?"
            self.read(
                f"{absolute}{separator}{query}" if query else absolute,
                headers=htmx,
                follow_htmx=False,
            )

    def _check_htmx(self, url: str, parser: LiveMarkup) -> None:
        """A page configures htmx once, as crm.htmx says; each request element the product
        wrote carries the session's key (without it, htmx would ignore the element)."""
        where = f"{self.who} GET {url}"
        if parser.htmx_configs:
            if len(parser.htmx_configs) != 1 or parser.htmx_scripts != 1:
                self.problems.append(f"{where}: htmx configured or loaded more than once")
            config = json.loads(parser.htmx_configs[0])
            for name, wanted in HTMX_CONFIG.items():
                if config.get(name) != wanted:
                    self.problems.append(f"{where}: htmx {name} is {config.get(name)!r}")
            selector = config.get("disableSelector", "")
            found = re.search(r"data-hx-key='(k[0-9a-f]+)'", selector)
            self.htmx_key = found[1] if found else None
            unkeyed = {
                f"[{name}]:not([data-hx-key='{self.htmx_key}'])" for name in REQUEST_ATTRIBUTES
            }
            if not found or not unkeyed <= {part.strip() for part in selector.split(",")}:
                self.problems.append(f"{where}: htmx acts on request elements without the key")
        for element, key in parser.request_elements:
            if key is None or key != self.htmx_key:
                self.problems.append(f"{where}: an htmx element without the page's key: {element}")


HTMX_CONFIG = {
    "allowEval": False,
    "allowScriptTags": False,
    "selfRequestsOnly": True,
    "historyCacheSize": 0,
}


# Pages that must show the hostile text (as text), so the sweep cannot pass by seeing none of it.
SHOWN = {
    "anonymous": {"privacy:preference_centre", "privacy:consent_confirm", "campaigns:unsubscribe"},
    "sales": {
        "dashboard", "customers:customer_list", "customers:customer_detail", "customers:search",
        "customers:account_list", "customers:account_detail", "customers:customer_edit",
        "customer_import:detail", "customer_import:progress", "segments:detail",
        "deals:list", "deals:board", "deals:detail",
    },
    "marketing": {
        "campaigns:list", "campaigns:detail", "campaigns:report", "campaigns:edit",
        "campaigns:preview", "campaigns:overview", "segments:detail", "segments_ml:detail",
        "customers:customer_detail",
    },
    "privacy": {"privacy:request_detail", "privacy:wordings", "privacy:bulk_consent",
                "customers:customer_detail"},
    "superuser": {
        "admin:privacy_datasubjectrequest_change", "admin:privacy_consentrecord_changelist",
        "campaigns:preview", "customers:customer_detail", "privacy:request_detail",
        # the browsable API
        "customer-list", "event-list", "note-list", "campaign-list", "data-request-list",
    },
}  # fmt: skip


@pytest.fixture
def hostile(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    for key, value in _SETTINGS.items():
        setattr(settings, key, value)
    users = _users()
    return {"users": users, **hostile_world(users)}


def _sweep_urls(world: dict) -> list[str]:
    urls = []
    for name, route in PATTERNS.items():
        if name in SKIPPED:
            continue
        urls += [_url(route, kwargs) for kwargs in real_kwargs(name, route, world)]
    return urls


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_no_stored_markup_is_live_on_any_page(hostile, role):
    sweep = MarkupSweep(Client(), role)
    user = hostile["users"][role]
    if user is not None:
        sweep.client.force_login(user)
    cache.clear()
    customer = hostile["customer"]

    for url in _sweep_urls(hostile):
        sweep.read(url)
    # The fragments the pages ask for with what a staff member types or picks.
    sweep.read(f"/customers/search/?{urlencode({'q': '<i'})}", headers={"HX-Request": "true"})
    for variant in hostile["campaign"].variants.all():
        sweep.read(
            f"/campaigns/{hostile['campaign'].pk}/preview/?variant={variant.pk}"
            f"&customer={customer.pk}",
            headers={"HX-Request": "true", "HX-Target": "preview"},
        )
    # The browsable API: the same rows, as HTML.
    for prefix, _viewset, _basename in router.registry:
        if user is not None and "(" not in prefix:
            sweep.read(f"/api/{prefix}/", headers={"Accept": "text/html"})
    if role == "superuser":
        for model in admin.site._registry:
            meta = model._meta
            sweep.read(f"/admin/{meta.app_label}/{meta.model_name}/")
            first = model.objects.order_by("pk").first()
            if first is not None:
                sweep.read(f"/admin/{meta.app_label}/{meta.model_name}/{first.pk}/change/")

    shown = {resolve(urlsplit(url).path).view_name for url in sweep.showing}
    assert SHOWN[role] <= shown, "the hostile text should be on these pages, as text"
    assert not sweep.problems, f"{len(sweep.problems)} problems:\n" + (
        "\n".join(sweep.problems[:40])
    )
    if role in ("marketing", "superuser"):
        assert sweep.frames_read, "the campaign preview shows the HTML message in a frame"
    assert Campaign.objects.get(pk=hostile["campaign"].pk).status != Campaign.Status.CANCELLED
