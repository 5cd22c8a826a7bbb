from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
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
]
