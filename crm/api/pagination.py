from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from crm.text import text_problem


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: stable and index-backed however deep the client pages.

    A cursor carries the position of the last row shown as text; one whose position is no
    value of the ordering field (a forged or mangled cursor) is answered like any other invalid
    cursor, 404 "Invalid cursor", instead of reaching the database.
    """

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        if text_problem(cursor.position):  # no stored value is like that
            raise NotFound(self.invalid_cursor_message)
        name = self.ordering[0].lstrip("-")
        try:
            self._model._meta.get_field(name).to_python(cursor.position)
        except FieldDoesNotExist:
            pass  # an annotation: the database compares it as text
        except (ValidationError, ValueError, TypeError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor
