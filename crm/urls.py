from django.contrib import admin
from django.urls import include, path

from crm import health, metrics

urlpatterns = [
    path("admin/system/", health.system, name="admin_system"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/", include("crm.api.urls")),
    path("", include("crm.web_urls")),
    path("customers/import/", include("customers.import_urls")),
    path("customers/", include("customers.urls")),
    path("privacy/", include("privacy.urls")),
    path("deals/", include("deals.urls")),
    path("segments/ml/", include("segments.ml.urls")),
    path("segments/", include("segments.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("insights/", include("insights.urls")),
    path("journeys/", include("journeys.urls")),
]
