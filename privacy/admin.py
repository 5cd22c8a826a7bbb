from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from crm.text import text_problem
from privacy.models import (
    AuditEntry,
    ConsentRecord,
    ConsentWording,
    DataSubjectRequest,
    Purpose,
    Suppression,
)


class FilteredAdmin(admin.ModelAdmin):
    """A list whose filter or search holds text no stored text can be (crm.text) is answered
    as any invalid filter is (the list without it, ?e=1)."""

    def get_changelist_instance(self, request):
        for _name, values in request.GET.lists():
            for value in values:
                if problem := text_problem(value):
                    raise IncorrectLookupParameters(f"a filter: {problem}")
        return super().get_changelist_instance(request)


@admin.register(Purpose)
class PurposeAdmin(FilteredAdmin):
    list_display = ["code", "name"]


@admin.register(ConsentWording)
class ConsentWordingAdmin(FilteredAdmin):
    """Admins manage the versions of the consent texts; a used version is never edited."""

    list_display = ["purpose", "version", "effective_from", "created_at"]
    list_filter = ["purpose"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.records.exists():
            return ["purpose", "version", "text", "effective_from"]
        return []


class ReadOnlyAdmin(FilteredAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["customer_id", "purpose", "state", "source", "recorded_at"]
    list_filter = ["purpose", "state", "source"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "object_kind", "object_id"]
    list_filter = ["action", "object_kind"]


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ["kind", "reason", "created_at"]


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "type", "law", "status", "received_on", "deadline"]
    list_filter = ["type", "law", "status"]
