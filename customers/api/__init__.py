"""REST API of customers: serializers and viewsets, registered on the project's router.

Higher apps extend the customer detail through `customer_detail_field_register` (privacy adds
the consent state), so this app never imports them.
"""

from rest_framework.routers import DefaultRouter

from customers.api.serializers import customer_detail_field_register

__all__ = ["customer_detail_field_register", "register"]


def register(router: DefaultRouter) -> None:
    """Add this app's viewsets to the API router."""
    from customers.api import views

    router.register("accounts", views.AccountViewSet, basename="account")
    router.register("customers", views.CustomerViewSet, basename="customer")
    router.register("products", views.ProductViewSet, basename="product")
    router.register("purchases", views.PurchaseViewSet, basename="purchase")
    router.register("events", views.EventViewSet, basename="event")
    router.register("notes", views.NoteViewSet, basename="note")
