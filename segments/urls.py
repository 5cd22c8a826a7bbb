from django.urls import path

from segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_create_view, name="create"),
    path("<int:pk>/", views.segment_detail, name="detail"),
    path("<int:pk>/edit/", views.segment_edit_view, name="edit"),
    path("<int:pk>/refresh/", views.segment_refresh_view, name="refresh"),
    path("<int:pk>/members/", views.segment_members_view, name="members"),
    path("<int:pk>/delete/", views.segment_delete_view, name="delete"),
]
