"""The base class of the hub's API views."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.views import APIView


class HubAPIView(APIView):
    """DRF's ``APIView``, leaving no reference cycle behind once it has answered.

    DRF and Django tie each request into cycles: the ``Request``'s parser context names the
    request itself and the view, the view keeps the request and its response, and Django's
    ``View.setup`` stores ``head`` as the view's own bound ``get``. Reference counting cannot
    free a cycle, so every request's objects waited for the garbage collector, whose
    collections stop every thread of a web process (docs/performance.md, "Garbage
    collection"). Once ``dispatch`` has answered none of these edges is used: the body is
    parsed by then (or never will be) and a response renders from its own context.
    """

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            drf_request = self.__dict__.get("request")
            if isinstance(drf_request, Request):
                drf_request.parser_context.pop("request", None)
                drf_request.parser_context.pop("view", None)
            self.__dict__.pop("response", None)
            self.__dict__.pop("head", None)
