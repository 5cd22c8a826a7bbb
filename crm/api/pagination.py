from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: stable and index-backed however deep the client pages."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
