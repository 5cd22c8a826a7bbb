from django.urls import path

from campaigns import views
from campaigns.providers import PROVIDERS, provider_webhook

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("overview/", views.campaigns_compare, name="overview"),
    path("new/", views.campaign_create, name="create"),
    path("audience-size/", views.campaign_audience_size, name="audience_estimate"),
    path("promotion-code/", views.promotion_code_check, name="promotion_code"),
    path("<int:pk>/", views.campaign_detail, name="detail"),
    path("<int:pk>/report/", views.campaign_report_page, name="report"),
    path("<int:pk>/edit/<slug:step>/", views.campaign_edit, name="edit"),
    path("<int:pk>/audience-size/", views.campaign_audience_size, name="audience_size"),
    path("<int:pk>/preview/", views.campaign_preview, name="preview"),
    path("<int:pk>/preview/frame/", views.campaign_preview_frame, name="preview_frame"),
    path("<int:pk>/preview/test/", views.campaign_test_send_view, name="test_send"),
    path("<int:pk>/progress/", views.campaign_progress, name="progress"),
    path("<int:pk>/<slug:action>/", views.campaign_action, name="action"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("t/o/<str:token>", views.track_open, name="track_open"),
    path("t/c/<str:token>/", views.track_click, name="track_click"),
    path("hooks/provider/", views.provider_events, name="provider_events"),
    # Email providers' tracking webhooks through django-anymail (campaigns/providers.py).
    *(
        path(f"hooks/{provider}/tracking/", provider_webhook(provider), name=f"{provider}_tracking")
        for provider in PROVIDERS
    ),
]
