"""The base every app's viewsets build on: reads through a queryset the user may see, writes
through the app's services, errors as 400s that name the field (crm.api.exceptions)."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.settings import api_settings

from crm.api.filters import (
    ReadableFieldsFilterBackend,
    ReadableFieldsSearchFilter,
    StrictOrderingFilter,
)
from crm.api.permissions import RoleModelPermissions


@contextmanager
def service_errors() -> Iterator[None]:
    """A unique constraint that a concurrent request won since the serializer checked it is a
    400: the client sent something that now conflicts, which is not a server fault.

    (A service's ValidationError needs nothing here: the API's exception handler,
    crm.api.exceptions, answers it as a 400 naming the fields.)
    """
    try:
        yield
    except IntegrityError as error:
        raise serializers.ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: ["This conflicts with a record saved meanwhile."]}
        ) from error


class ServiceModelViewSet(viewsets.GenericViewSet):
    """A viewset whose writes call services. Subclasses add the mixins of the actions they offer
    and implement the matching `service_create`, `service_update`, `service_delete`.

    Each purpose has its own serializer: `serializer_class` renders, `create_serializer_class`
    and `update_serializer_class` validate input; responses always use `serializer_class`.
    """

    permission_classes = [RoleModelPermissions]
    filter_backends = [
        ReadableFieldsFilterBackend,
        ReadableFieldsSearchFilter,
        StrictOrderingFilter,
    ]
    read_roles: tuple[str, ...] = ()  # any role
    write_roles: tuple[str, ...] = ()
    create_serializer_class: type[serializers.Serializer] | None = None
    update_serializer_class: type[serializers.Serializer] | None = None

    def get_serializer_class(self):
        if self.action == "create" and self.create_serializer_class is not None:
            return self.create_serializer_class
        if self.action in ("update", "partial_update") and self.update_serializer_class:
            return self.update_serializer_class
        return self.serializer_class

    def fields_hidden(self) -> frozenset[str]:
        """Fields of the records the user may not read: refused as filters, orderings and
        search targets by the filter backends. Views of customers name theirs."""
        return frozenset()

    def rendered(self, instance) -> dict:
        """The saved object as the reader serializer shows it, fetched the way reads fetch it."""
        fresh = self.get_queryset().filter(pk=instance.pk).first() or instance
        return self.serializer_class(fresh, context=self.get_serializer_context()).data

    def service_create(self, data: dict):
        raise NotImplementedError

    def service_update(self, instance, data: dict):
        raise NotImplementedError

    def service_delete(self, instance) -> None:
        raise NotImplementedError


class CreateMixin:
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            instance = self.service_create(serializer.validated_data)
        return Response(self.rendered(instance), status.HTTP_201_CREATED)


class UpdateMixin:
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            instance = self.service_update(instance, serializer.validated_data)
        return Response(self.rendered(instance))

    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)


class DestroyMixin:
    def destroy(self, request, *args, **kwargs):
        instance = self.get_object()
        with service_errors():
            self.service_delete(instance)
        return Response(status=status.HTTP_204_NO_CONTENT)
