from django.urls import path

from customers.views import detail, edit, lists

app_name = "customers"

urlpatterns = [
    path("", lists.customer_list, name="customer_list"),
    path("export.csv", lists.customer_export, name="customer_export"),
    path("count/", lists.customer_count, name="customer_count"),
    path("search/", lists.global_search, name="search"),
    path("pick/", lists.customer_pick, name="customer_pick"),
    path("new/", edit.customer_create_view, name="customer_create"),
    path("<int:pk>/", detail.customer_detail, name="customer_detail"),
    path("<int:pk>/purchases/", detail.customer_purchases, name="customer_purchases"),
    path("<int:pk>/edit/", edit.customer_edit_view, name="customer_edit"),
    path("<int:pk>/merge/", edit.customer_merge_view, name="customer_merge"),
    path("<int:pk>/notes/", edit.customer_note_create, name="customer_note_create"),
    path("notes/<int:pk>/complete/", edit.note_complete_view, name="note_complete"),
    path("accounts/", lists.account_list, name="account_list"),
    path("accounts/new/", edit.account_create_view, name="account_create"),
    path("accounts/<int:pk>/", detail.account_detail, name="account_detail"),
    path("accounts/<int:pk>/edit/", edit.account_edit_view, name="account_edit"),
    path("accounts/<int:pk>/notes/", edit.account_note_create, name="account_note_create"),
]
