"""The admin's view of the figures checks: each nightly run, what drifted and what was repaired."""

from django.contrib import admin

from customers.models import FiguresCheck


@admin.register(FiguresCheck)
class FiguresCheckAdmin(admin.ModelAdmin):
    list_display = ["checked_at", "customers_checked", "customers_drifted", "customers_repaired"]
    readonly_fields = [f.name for f in FiguresCheck._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
