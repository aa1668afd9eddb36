"""What the admins with actions share: a selection that holds something other than the model's ids (a hand-made or
stale form) is refused with a message, before Django's lookup fails on it with a 500."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.utils.translation import gettext as _


class CheckedSelectionMixin:
    """For a ``ModelAdmin``: the selected ids must be ids of the model (UUIDs of orders, numbers of notifications)."""

    def response_action(self, request: HttpRequest, queryset):
        pk = self.model._meta.pk
        try:
            for value in request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME):
                pk.to_python(value)
        except ValidationError:
            self.message_user(
                request,
                _("The selection holds something that is not an id of this list: nothing was done."),
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class EvidenceMixin:
    """For the ``ModelAdmin`` of orders, payment attempts and notifications: the record of money taken and of what
    the providers said is never added or deleted by hand (orders come from QR scans, notifications go by
    ``prune_notifications`` only). Was:
    "Delete selected" removed a paid order's attempt — then the order itself, no longer protected by it."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
