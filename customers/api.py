"""REST API of customers: serializers and viewsets, registered on the project's router."""

from rest_framework.routers import DefaultRouter


def register(router: DefaultRouter) -> None:
    """Add this app's viewsets to the API router."""
