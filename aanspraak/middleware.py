"""Response headers every answer of the hub carries; messages for the admin only; Django's
authentication without a reference cycle per request."""

import weakref
from functools import partial

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages.middleware import MessageMiddleware
from django.utils.functional import SimpleLazyObject


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


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with ``request.user`` and ``request.auser`` holding the request weakly.

    Django's own store on the request a lambda and a partial that hold the request: a
    reference cycle on every request, API calls included, that only the garbage collector
    frees, in collections that stop every thread of a web process (docs/performance.md,
    "Garbage collection"). Both are only called while the request is alive.
    """

    def process_request(self, request):
        super().process_request(request)  # its check that sessions come first
        request_ref = weakref.ref(request)
        request.user = SimpleLazyObject(lambda: auth_middleware.get_user(request_ref()))
        request.auser = partial(_auser, request_ref)


async def _auser(request_ref: weakref.ref):
    return await auth_middleware.auser(request_ref())
