"""The API's one exception handler: every refusal a service raises is a 400 of one shape.

A service refuses bad input with Django's ValidationError (as the pages see it too). The API
answers it exactly as DRF answers a serializer's errors: an object of messages by field,
`{"field": ["message", ...]}`, with `non_field_errors` for what concerns the request as a
whole. Viewsets call services without converting anything; this handler does it once.
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


def validation_error_detail(error: DjangoValidationError) -> dict[str, list[str]]:
    """The 400 body of a Django ValidationError: messages by field, or `non_field_errors`."""
    if hasattr(error, "error_dict"):
        return {
            api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
            for field, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


def api_exception_handler(exc: Exception, context: dict):
    """DRF's handler, after turning a service's ValidationError into DRF's own."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    return exception_handler(exc, context)
