from django.urls import path

from segments.ml import views

app_name = "segments_ml"

urlpatterns = [
    path("", views.ml_segment_list, name="list"),
    path("new/", views.ml_segment_create_view, name="create"),
    path("rfm/", views.rfm_page, name="rfm"),
    path("predictive/", views.predictive_page, name="predictive"),
    path("predictive/lifetime/", views.lifetime_fit_view, name="lifetime_fit"),
    path("jobs/<int:pk>/", views.ml_job_status, name="job"),
    path("clusters/<int:pk>/rename/", views.cluster_rename_view, name="cluster_rename"),
    path("<int:pk>/", views.ml_segment_detail, name="detail"),
    path("<int:pk>/train/", views.ml_segment_train_view, name="train"),
    path("<int:pk>/delete/", views.ml_segment_delete_view, name="delete"),
]
