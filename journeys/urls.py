from django.urls import path

from journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.journey_list, name="list"),
    path("new/", views.journey_create, name="create"),
    path("<int:pk>/", views.journey_detail, name="detail"),
    path("<int:pk>/edit/", views.journey_builder, name="edit"),
    path("<int:pk>/activate/", views.journey_activate, name="activate"),
    path("<int:pk>/pause/", views.journey_pause, name="pause"),
    path("<int:pk>/test/", views.journey_test, name="test"),
    path("steps/<int:pk>/", views.step_edit, name="step_edit"),
    path("steps/<int:pk>/move/", views.step_move, name="step_move"),
    path("steps/<int:pk>/remove/", views.step_remove, name="step_remove"),
    path("enrolments/<int:pk>/", views.enrolment_detail, name="enrolment_detail"),
    path("enrolments/<int:pk>/hurry/", views.enrolment_hurry, name="enrolment_hurry"),
]
