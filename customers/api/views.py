"""Viewsets of the customers API. Reads start from what the user may see; writes call services."""

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from crm.api.permissions import IsAuthorOrSuperuser, RoleModelPermissions
from crm.api.viewsets import CreateMixin, DestroyMixin, ServiceModelViewSet, UpdateMixin
from crm.roles import Role, user_sees_all_customers
from customers.api import filters, serializers
from customers.models import Event, Note, Product, Purchase
from customers.registry import access_record
from customers.selectors import (
    accounts_visible_to,
    customer_fields_hidden_from,
    customers_visible_to,
)
from customers.services import (
    account_create,
    account_update,
    customer_create,
    customer_update,
    event_create,
    note_create,
    note_delete,
    note_update,
    product_create,
    product_delete,
    product_update,
    purchase_create,
    tags_get_or_create,
)


def _of_visible_customers(queryset: QuerySet, user) -> QuerySet:
    """Rows hanging off a customer (purchases, events) are visible with their customer."""
    if user_sees_all_customers(user):
        return queryset
    return queryset.filter(customer__in=customers_visible_to(user))


def _with_tags(data: dict) -> dict:
    """Tag names from the request become Tag rows for the service."""
    if "tags" in data:
        data["tags"] = tags_get_or_create(names=data["tags"])
    return data


def _schema_for(create=None, update=None, read=None) -> dict:
    views = {}
    if create is not None:
        views["create"] = extend_schema(request=create, responses={201: read})
    if update is not None:
        views["update"] = extend_schema(request=update, responses={200: read})
        views["partial_update"] = extend_schema(request=update, responses={200: read})
    return views


@extend_schema_view(
    **_schema_for(
        create=serializers.AccountWriteSerializer,
        update=serializers.AccountWriteSerializer,
        read=serializers.AccountSerializer,
    )
)
class AccountViewSet(
    CreateMixin, UpdateMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceModelViewSet
):
    """Accounts (companies, households). Sales see and edit the ones they own."""

    serializer_class = serializers.AccountSerializer
    create_serializer_class = serializers.AccountWriteSerializer
    update_serializer_class = serializers.AccountWriteSerializer
    write_roles = (Role.SALES,)
    filterset_class = filters.AccountFilter
    search_fields = ["name", "industry", "city"]
    ordering_fields = ["id", "name", "created_at"]
    ordering = "-id"

    def get_queryset(self):
        return accounts_visible_to(self.request.user).prefetch_related("tags")

    def service_create(self, data):
        return account_create(actor=self.request.user, **_with_tags(data))

    def service_update(self, instance, data):
        return account_update(account=instance, actor=self.request.user, **_with_tags(data))


@extend_schema_view(
    **_schema_for(
        create=serializers.CustomerWriteSerializer,
        update=serializers.CustomerWriteSerializer,
        read=serializers.CustomerDetailSerializer,
    )
)
class CustomerViewSet(
    CreateMixin, UpdateMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceModelViewSet
):
    """Customers with their derived purchase figures; the detail adds consent state.

    Customers are removed only through a data-subject erasure (privacy), never by a DELETE.
    """

    serializer_class = serializers.CustomerDetailSerializer
    create_serializer_class = serializers.CustomerWriteSerializer
    update_serializer_class = serializers.CustomerWriteSerializer
    write_roles = (Role.SALES,)
    filterset_class = filters.CustomerFilter
    ordering_fields = [
        "id",
        "created_at",
        "last_name",
        "lifetime_value",
        "purchase_count",
        "average_order_value",
    ]
    ordering = "-id"

    # Fields the user may not read (customer_fields_hidden_from) drop out of the search.
    search_fields = ["first_name", "last_name", "^email", "=external_id", "phone"]

    def fields_hidden(self) -> frozenset[str]:
        return customer_fields_hidden_from(self.request.user)

    def get_serializer_class(self):
        if self.action == "list":
            return serializers.CustomerListSerializer
        return super().get_serializer_class()

    def get_queryset(self):
        return customers_visible_to(self.request.user).prefetch_related("tags")

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        access_record(
            user=request.user, action="view", object_kind="customer", object_id=response.data["id"]
        )
        return response

    def service_create(self, data):
        return customer_create(actor=self.request.user, **_with_tags(data))

    def service_update(self, instance, data):
        return customer_update(customer=instance, actor=self.request.user, **_with_tags(data))


@extend_schema_view(
    **_schema_for(
        create=serializers.ProductWriteSerializer,
        update=serializers.ProductWriteSerializer,
        read=serializers.ProductSerializer,
    )
)
class ProductViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ServiceModelViewSet,
):
    """The product catalogue, managed by marketing."""

    serializer_class = serializers.ProductSerializer
    create_serializer_class = serializers.ProductWriteSerializer
    update_serializer_class = serializers.ProductWriteSerializer
    write_roles = (Role.MARKETING,)
    filterset_class = filters.ProductFilter
    search_fields = ["name", "=sku", "category"]
    ordering_fields = ["id", "name", "sku"]
    ordering = "-id"

    def get_queryset(self):
        return Product.objects.all()

    def service_create(self, data):
        return product_create(actor=self.request.user, **data)

    def service_update(self, instance, data):
        return product_update(product=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        product_delete(product=instance, actor=self.request.user)


@extend_schema_view(
    **_schema_for(create=serializers.PurchaseCreateSerializer, read=serializers.PurchaseSerializer)
)
class PurchaseViewSet(
    CreateMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceModelViewSet
):
    """Purchases, recorded once each; the customer's figures follow at once."""

    serializer_class = serializers.PurchaseSerializer
    create_serializer_class = serializers.PurchaseCreateSerializer
    write_roles = (Role.SALES,)
    filterset_class = filters.PurchaseFilter
    search_fields = ["=external_id", "=promotion_code"]
    ordering_fields = ["id", "purchased_at"]
    ordering = "-id"

    def get_queryset(self):
        return _of_visible_customers(Purchase.objects.all(), self.request.user)

    def service_create(self, data):
        return purchase_create(actor=self.request.user, **data)


@extend_schema_view(
    **_schema_for(create=serializers.EventCreateSerializer, read=serializers.EventSerializer)
)
class EventViewSet(
    CreateMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceModelViewSet
):
    """Behaviour events (page views, email opens and clicks, app actions)."""

    serializer_class = serializers.EventSerializer
    create_serializer_class = serializers.EventCreateSerializer
    write_roles = (Role.MARKETING,)
    filterset_class = filters.EventFilter
    ordering_fields = ["id", "occurred_at"]
    ordering = "-id"

    def get_queryset(self):
        return _of_visible_customers(Event.objects.all(), self.request.user)

    def service_create(self, data):
        return event_create(actor=self.request.user, **data)


@extend_schema_view(
    **_schema_for(
        create=serializers.NoteCreateSerializer,
        update=serializers.NoteUpdateSerializer,
        read=serializers.NoteSerializer,
    )
)
class NoteViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ServiceModelViewSet,
):
    """Notes and follow-ups on customers and accounts; changed only by their author."""

    permission_classes = [RoleModelPermissions, IsAuthorOrSuperuser]
    serializer_class = serializers.NoteSerializer
    create_serializer_class = serializers.NoteCreateSerializer
    update_serializer_class = serializers.NoteUpdateSerializer
    write_roles = (Role.SALES,)
    filterset_class = filters.NoteFilter
    search_fields = ["body"]
    ordering_fields = ["id", "created_at"]
    ordering = "-id"

    def get_queryset(self):
        user = self.request.user
        notes = Note.objects.all()
        if user_sees_all_customers(user):
            return notes
        return notes.filter(
            Q(customer__in=customers_visible_to(user)) | Q(account__in=accounts_visible_to(user))
        )

    def service_create(self, data):
        return note_create(author=self.request.user, **data)

    def service_update(self, instance, data):
        return note_update(note=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        note_delete(note=instance, actor=self.request.user)
