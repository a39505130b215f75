"""Real HTTP servers on loopback that play another party in tests: they record what they
receive and answer as told (200, 503, 429 with Retry-After, 400, slow, or no answer: the
connection closed or reset after the request was read), and can serve an OAuth2
client-credentials token endpoint (HTTP Basic by default; any client authentication a test
checks itself with ``authenticate_client``)."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: dict | list | None


@dataclass
class Answer:
    status: int = 200
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None  # sent as is instead of ``body`` (malformed answers)
    # No answer at all: "close" ends the connection (FIN), "reset" aborts it (RST).
    drop: str = ""


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 128  # the listen backlog: a drain opens 16 connections at once

    def handle_error(self, request, client_address):
        # A client that gave up (timed out, or was killed) before the answer: not an error.
        pass


class LoopbackParty:
    """A threaded HTTP server on 127.0.0.1 with a free port. ``answer(received) -> Answer``
    decides each reply (default 200). ``/oauth2/token`` issues bearer tokens that live
    ``token_lifetime`` seconds; requests with another bearer token can be refused with
    ``require_token=True``. ``authenticate_client(received) -> refusal or None`` replaces the
    token endpoint's check for HTTP Basic credentials."""

    def __init__(self, answer: Callable[[Received], Answer] | None = None):
        self.answer = answer or (lambda r: Answer())
        self.received: list[Received] = []
        self.token_requests: list[Received] = []
        self.tokens: set[str] = set()
        self.token_lifetime = 3600
        self.require_token = False
        self.authenticate_client: Callable[[Received], str | None] | None = None
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        party = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = {"_form": raw.decode()}
                received = Received(self.command, self.path, dict(self.headers), body)
                if self.path.rstrip("/") == "/oauth2/token":
                    party._token(self, received)
                    return
                with party.lock:
                    party.in_flight += 1
                    party.max_in_flight = max(party.max_in_flight, party.in_flight)
                try:
                    if party.require_token:
                        auth = self.headers.get("Authorization", "")
                        if auth.removeprefix("Bearer ") not in party.tokens:
                            with party.lock:
                                party.received.append(received)
                            party._reply(self, Answer(401, {"status": 99, "statusMessage": "no"}))
                            return
                    answer = party.answer(received)
                    with party.lock:
                        party.received.append(received)
                    if answer.delay:
                        time.sleep(answer.delay)
                    if answer.drop:
                        party._drop(self, answer.drop)
                    else:
                        party._reply(self, answer)
                finally:
                    with party.lock:
                        party.in_flight -= 1

            do_PUT = do_POST = do_GET = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/token"

    def start(self) -> LoopbackParty:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _token(self, handler, received: Received) -> None:
        with self.lock:
            self.token_requests.append(received)
        if self.authenticate_client is not None:
            refusal = self.authenticate_client(received)
        else:
            auth = handler.headers.get("Authorization", "")
            refusal = None if auth.startswith("Basic ") else "no client credentials"
        if refusal is not None:
            answer = {"error": "invalid_client", "error_description": refusal}
            self._reply(handler, Answer(401, answer))
            return
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.tokens.add(token)
        self._reply(
            handler,
            Answer(
                200,
                {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
            ),
        )

    @staticmethod
    def basic_credentials(received: Received) -> tuple[str, str]:
        raw = base64.b64decode(received.headers["Authorization"].removeprefix("Basic "))
        client_id, _, secret = raw.decode().partition(":")
        return client_id, secret

    @staticmethod
    def form(received: Received) -> dict[str, str]:
        """The fields of a form-encoded request body (a token request)."""
        raw = (received.body or {}).get("_form", "") if isinstance(received.body, dict) else ""
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

    @staticmethod
    def _drop(handler, how: str) -> None:
        handler.close_connection = True
        if how == "reset":
            # Linger 0: close() aborts the connection with a RST instead of a FIN.
            linger = struct.pack("ii", 1, 0)
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            handler.connection.close()

    @staticmethod
    def _reply(handler, answer: Answer) -> None:
        payload = (
            answer.raw
            if answer.raw is not None
            else json.dumps(answer.body if answer.body is not None else {}).encode()
        )
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def bodies(self, path: str = "/entitlements") -> list:
        with self.lock:
            return [r.body for r in self.received if r.path == path]


def point_party_at(party, server: LoopbackParty, *, client: tuple[str, str] | None = None) -> None:
    """Make ``server`` the party's API for the hub's outbound calls; with ``client`` (id,
    secret) the hub must first get a token from the server's token endpoint."""
    party.endpoint_base_url = server.base_url
    if client is not None:
        party.endpoint_token_url = server.token_url
        party.endpoint_client_id, party.endpoint_client_secret = client
    party.save()
