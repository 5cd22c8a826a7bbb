"""Webhooks from mail providers (bounces, complaints). No login: authenticated by a shared secret."""

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.tracking import provider_events_record


@csrf_exempt
@require_POST
def provider_events(request: HttpRequest) -> JsonResponse:
    """Bounces and complaints from the email provider: Authorization: Bearer <shared secret>.

    Body: {"events": [{"type": "bounce"|"complaint", "message_id": "<...>", "detail": "..."}]}.
    """
    secret = settings.CAMPAIGNS_PROVIDER_SECRET
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return JsonResponse({"detail": "authentication failed"}, status=401)
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "the body is not valid JSON"}, status=400)
    items = payload.get("events") if isinstance(payload, dict) else None
    result = provider_events_record(items)
    status = 400 if result["errors"] and not result["recorded"] else 200
    return JsonResponse(result, status=status)
