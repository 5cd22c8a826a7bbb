from django.urls import path

from privacy.views import public, staff

app_name = "privacy"

urlpatterns = [
    path("", staff.request_queue, name="request_queue"),
    path("requests/new/", staff.request_create, name="request_create"),
    path("requests/<int:pk>/", staff.request_detail, name="request_detail"),
    path("requests/<int:pk>/transition/", staff.request_transition, name="request_transition"),
    path("requests/<int:pk>/extend/", staff.request_extend, name="request_extend"),
    path("requests/<int:pk>/match/", staff.request_match, name="request_match"),
    path("requests/<int:pk>/export/", staff.request_export, name="request_export"),
    path("exports/<str:token>/", staff.export_download, name="export_download"),
    path("audit/", staff.audit_log, name="audit_log"),
    path("retention/", staff.retention_report, name="retention"),
    path("processing/", staff.processing_records, name="processing"),
    path("wordings/", staff.wordings, name="wordings"),
    path("bulk/", staff.bulk_consent, name="bulk_consent"),
    path("customers/<int:pk>/consent/", staff.customer_consent_record, name="consent_record"),
    path(
        "customers/<int:pk>/preference-link/",
        staff.customer_preference_link,
        name="preference_link",
    ),
    path("p/<str:token>/", public.preference_centre, name="preference_centre"),
    path(
        "p/<str:token>/unsubscribe/", public.preference_unsubscribe, name="preference_unsubscribe"
    ),
    path("p/<str:token>/request/", public.preference_request, name="preference_request"),
    path("confirm/<str:token>/", public.consent_confirm_view, name="consent_confirm"),
    path("subscribe/", public.signup, name="signup"),
    path("subscribe/thanks/", public.signup_done, name="signup_done"),
]
