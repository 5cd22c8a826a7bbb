from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("", views.kpi_view, name="kpis"),
    path("refresh/", views.kpi_refresh_view, name="kpi_refresh"),
    path("kpis.csv", views.kpi_csv, name="kpi_csv"),
    path("compare/", views.compare_view, name="compare"),
    path("cohorts/", views.cohorts_view, name="cohorts"),
    path("surveys/", views.survey_list, name="survey_list"),
    path("surveys/<int:pk>/", views.survey_detail, name="survey_detail"),
    path("surveys/<int:pk>/send/", views.survey_send_view, name="survey_send"),
    path("survey/<str:token>/", views.survey_answer, name="survey_answer"),
]
