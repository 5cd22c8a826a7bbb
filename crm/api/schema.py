"""The OpenAPI document as a contract a client can be generated from.

A choice read from a model field that may be blank or null answers '' or null (a customer with
no income band): DRF leaves `allow_blank` off read-only fields, so drf-spectacular would
document an enum without them and a generated client would refuse the answer. Here such a
field is documented with the blank and null choices the model allows (ENUM_ADD_EXPLICIT_
BLANK_NULL_CHOICE then adds them as BlankEnum / NullEnum).
"""

import copy

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular import openapi
from rest_framework import serializers


def _model_field(field: serializers.Field) -> models.Field | None:
    """The model field a serializer field reads, when it reads one directly."""
    parent = field.parent
    meta = getattr(parent, "Meta", None)
    model = getattr(meta, "model", None)
    if model is None or len(field.source_attrs) != 1:
        return None
    try:
        return model._meta.get_field(field.source_attrs[0])
    except FieldDoesNotExist:
        return None


class AutoSchema(openapi.AutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        if isinstance(field, serializers.ChoiceField) and field.read_only:
            model_field = _model_field(field)
            if model_field is not None:
                blank = model_field.blank and isinstance(model_field, models.CharField)
                if (blank and not field.allow_blank) or (model_field.null and not field.allow_null):
                    field = copy.copy(field)
                    field.allow_blank = field.allow_blank or blank
                    field.allow_null = field.allow_null or model_field.null
        return super()._map_serializer_field(field, direction, bypass_extensions)


# Components added to the document as given, after drf-spectacular's enum hook (which would cut
# every enum of a hand-written schema out into components of its own): a JSON Schema generated
# elsewhere (the rule language) stays the one document.
_components: dict[str, dict] = {}


def schema_component_register(name: str, schema: dict) -> dict:
    """Publish `schema` as the component `name`; returns the reference to it."""
    _components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def postprocess_schema_components(result, generator, **kwargs):
    """POSTPROCESSING_HOOKS: add the registered components, in name order like the others."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(copy.deepcopy(_components))
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    return result
