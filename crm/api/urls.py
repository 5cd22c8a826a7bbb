"""The REST API: every app registers its viewsets on one router."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

import customers.api
import privacy.api
import segments.api
import campaigns.api

router = DefaultRouter()
for module in (customers.api, privacy.api, segments.api, campaigns.api):
    module.register(router)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("", include(router.urls)),
    *[p for m in (customers.api, privacy.api, segments.api, campaigns.api) for p in getattr(m, "extra_urlpatterns", [])],
]
