"""Response headers every answer of the hub carries; messages for the admin only."""

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware


class ApiVersionMiddleware:
    """Adds ``API-Version`` with the full version of the hub's API to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["API-Version"] = settings.HUB_API_VERSION
        return response


class AdminMessageMiddleware(MessageMiddleware):
    """Django's messages for the admin pages only: the API never shows any, and setting up
    the message storage was 2.5 % of a confirmation's time (docs/performance.md)."""

    def process_request(self, request):
        if request.path_info.startswith("/admin/"):
            super().process_request(request)
