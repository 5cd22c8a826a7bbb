"""Pages that belong to no single app: sign-in, the dashboard."""

from django.contrib.auth import views as auth_views
from django.urls import path

from crm import bulk_views, list_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("bulk/jobs/<int:pk>/", bulk_views.bulk_job, name="bulk_job"),
    path("bulk/<str:list_name>/", bulk_views.bulk_action, name="bulk_action"),
    path("views/<int:pk>/delete/", list_views.saved_view_delete, name="saved_view_delete"),
    path("views/<str:list_name>/", list_views.saved_view_save, name="saved_view_save"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(success_url="/password/done/"),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
