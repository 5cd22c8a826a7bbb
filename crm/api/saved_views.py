"""Saved views of the lists in the API: a person's own and the shared ones; private views are
their owner's alone (crm.saved_views)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.routers import DefaultRouter

from crm import saved_views
from crm.api.permissions import RolePermissions
from crm.api.viewsets import CreateMixin, DestroyMixin, ServiceModelViewSet, UpdateMixin
from crm.models import SavedView
from crm.roles import Role


class SavedViewSerializer(serializers.ModelSerializer):
    class Meta:
        model = SavedView
        fields = ["id", "list_name", "name", "owner", "shared", "query", "columns", "created_at"]
        read_only_fields = fields


class SavedViewWriteSerializer(serializers.Serializer):
    list_name = serializers.ChoiceField(choices=SavedView.ListName.choices)
    name = serializers.CharField(max_length=100)
    shared = serializers.BooleanField(default=False)
    query = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200),
        help_text="The list's filter and sort, as its query string's fields.",
    )
    columns = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=30
    )


class SavedViewUpdateSerializer(SavedViewWriteSerializer):
    list_name = None

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


@extend_schema_view(
    create=extend_schema(request=SavedViewWriteSerializer, responses={201: SavedViewSerializer}),
    partial_update=extend_schema(
        request=SavedViewUpdateSerializer, responses={200: SavedViewSerializer}
    ),
    update=extend_schema(request=SavedViewUpdateSerializer, responses={200: SavedViewSerializer}),
)
class SavedViewViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ServiceModelViewSet,
):
    """Named filters, sorts and columns of the deal, customer and account lists: your own and
    the shared ones. Only the person who saved a view changes or deletes it."""

    permission_classes = [RolePermissions]
    write_roles = tuple(Role.values)  # every staff role keeps views of the lists it opens
    serializer_class = SavedViewSerializer
    create_serializer_class = SavedViewWriteSerializer
    update_serializer_class = SavedViewUpdateSerializer
    ordering_fields = ["id", "name"]
    ordering = "id"
    filterset_fields = ["list_name", "shared"]

    def get_queryset(self):
        return saved_views.saved_views_visible_to(self.request.user)

    def service_create(self, data):
        return saved_views.saved_view_create(owner=self.request.user, **data)

    def service_update(self, instance, data):
        return saved_views.saved_view_update(view=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        saved_views.saved_view_delete(view=instance, actor=self.request.user)


def register(router: DefaultRouter) -> None:
    router.register("saved-views", SavedViewViewSet, basename="saved-view")
