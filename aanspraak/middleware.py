"""Response headers every answer of the hub carries."""

from django.conf import settings


class ApiVersionMiddleware:
    """Adds ``API-Version`` with the full version of the hub's API to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["API-Version"] = settings.HUB_API_VERSION
        return response
