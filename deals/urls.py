from django.urls import path

from deals import views

app_name = "deals"

urlpatterns = [
    path("", views.deal_list, name="list"),
    path("board/", views.deal_board, name="board"),
    path("forecast/", views.deal_forecast, name="forecast"),
    path("forecast/targets/", views.forecast_target_set, name="target_set"),
    path("forecast/win-model/", views.win_model_train, name="win_model_train"),
    path("bulk/", views.deal_bulk, name="bulk"),
    path("bulk/<int:pk>/", views.deal_bulk_job, name="bulk_job"),
    path("views/", views.deal_view_save, name="view_save"),
    path("views/<int:pk>/delete/", views.deal_view_delete, name="view_delete"),
    path("new/", views.deal_create, name="create"),
    path("activities/new/", views.activity_create, name="activity_create"),
    path("activities/<int:pk>/done/", views.activity_done, name="activity_done"),
    path("<int:pk>/", views.deal_detail, name="detail"),
    path("<int:pk>/edit/", views.deal_edit, name="edit"),
    path("<int:pk>/move/", views.deal_move, name="move"),
]
