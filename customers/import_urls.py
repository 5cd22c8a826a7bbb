from django.urls import path

from customers import import_views

app_name = "customer_import"

urlpatterns = [
    path("", import_views.import_list, name="list"),
    path("<int:pk>/", import_views.import_detail, name="detail"),
    path("<int:pk>/progress/", import_views.import_progress, name="progress"),
    path("<int:pk>/errors.csv", import_views.import_report, name="report"),
]
