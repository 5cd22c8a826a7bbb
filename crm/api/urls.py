"""The REST API: every app registers its viewsets on one router."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

import campaigns.api
import customers.api
import deals.api
import insights.api
import journeys.api
import privacy.api
import segments.api
from crm.api import bulk, saved_views

API_MODULES = (
    saved_views,
    bulk,
    customers.api,
    privacy.api,
    deals.api,
    segments.api,
    campaigns.api,
    insights.api,
    journeys.api,
)

router = DefaultRouter()
for module in API_MODULES:
    module.register(router)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as its own file (?script=), so the page
    # needs no inline script under the Content Security Policy.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    # No ReDoc page: it loads web fonts from a CDN and injects inline styles, which the
    # Content Security Policy (rightly) blocks.
    path("", include(router.urls)),
    *[p for m in API_MODULES for p in getattr(m, "extra_urlpatterns", [])],
]
