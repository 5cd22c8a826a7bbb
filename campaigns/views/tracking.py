"""Public links in messages: unsubscribe, the open pixel, tracked clicks. No login: each link is
signed."""

import base64

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from campaigns.links import BadLink, click_target, open_send_id, unsubscribe_send_id
from campaigns.models import MessageEvent, Send, Variant
from campaigns.tracking import message_event_record, send_customer_erased, send_unsubscribe
from crm.client_address import client_address
from privacy.models import Purpose

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@csrf_exempt  # RFC 8058: mail providers POST the one-click unsubscribe without a CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation page (link scanners must not unsubscribe anyone); POST
    unsubscribes at once, whether from the page's button or a provider's one-click request."""
    try:
        send_id = unsubscribe_send_id(token)
    except BadLink as exc:
        return render(request, "campaigns/unsubscribe.html", {"error": str(exc)}, status=400)
    send = Send.objects.select_related("campaign", "customer").filter(pk=send_id).first()
    if send is None:
        return render(
            request,
            "campaigns/unsubscribe.html",
            {"error": "This message no longer exists."},
            status=404,
        )
    if send_customer_erased(send):
        # The person was erased: their addresses are suppressed; nothing to record or show.
        return render(request, "campaigns/unsubscribe.html", {"erased": True})
    if request.method == "POST":
        send_unsubscribe(send=send, ip_address=client_address(request))
        return render(request, "campaigns/unsubscribe.html", {"done": True, "send": send})
    purpose = Purpose.objects.filter(pk=send.campaign.purpose_code).first()
    return render(request, "campaigns/unsubscribe.html",
                  {"send": send, "token": token, "purpose": purpose})  # fmt: skip


@require_GET
def track_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        send_id = open_send_id(token.removesuffix(".gif"))
    except BadLink:
        return HttpResponse(PIXEL, content_type="image/gif")
    send = (
        Send.objects.select_related("customer")
        .filter(pk=send_id, status__in=Send.MAY_HAVE_ARRIVED)
        .first()
    )
    if send is not None and not send_customer_erased(send):
        message_event_record(send=send, kind=MessageEvent.Kind.OPEN)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def track_click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and go on to the link, which must be signed by us (no open redirect);
    an erased person's click goes on to the link and is not recorded."""
    try:
        send_id, url = click_target(token)
    except BadLink:
        return HttpResponse("This link is not valid.", status=400, content_type="text/plain")
    send = Send.objects.select_related("customer", "variant").filter(pk=send_id).first()
    if send is None:
        return HttpResponse("This link is not valid.", status=404, content_type="text/plain")
    if send.variant is not None and not _link_in_message(send.variant, url):
        return HttpResponse("This link is not valid.", status=400, content_type="text/plain")
    if not send_customer_erased(send):
        message_event_record(send=send, kind=MessageEvent.Kind.CLICK, url=url)
    return HttpResponseRedirect(url)


def _link_in_message(variant: Variant, url: str) -> bool:
    """Whether the variant's HTML links to the URL, literally or as a recommended product."""
    from campaigns.links import links_in

    shop = f"{settings.CAMPAIGNS_SITE_URL.rstrip('/')}/shop/"
    return url in links_in(variant.html) or url.startswith(shop)
