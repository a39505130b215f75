"""Admin for records of what happened (entitlements, messages, confirmations, events): shown,
searched and acted on through admin actions, never edited by hand.

A hand edit would bypass the transition table and write no status event, and the next replay
of the entitlement's confirmations would silently undo it; every change therefore goes
through a service (the actions: propose cancel/block, re-send, check enrollment)."""

from django.contrib import admin


class RecordAdmin(admin.ModelAdmin):
    """View-only: no add, no change, no delete; actions still work."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RecordInline(admin.TabularInline):
    """A view-only inline of records."""

    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
