"""A simulator of the hub's counterparts: a licence registry, a portal and/or a seller on one
port (``manage.py simulate_party``), for the demo, end-to-end tests and load trials.

It accepts the hub's outbound messages and answers them like the real parties would,
asynchronously and after a delay:

- as licence registry (``PUT [/registry]/entitlements``): a proposed ``created`` is
  confirmed ``entitled``; for a share of entitlements (chosen by entitlementId, so a rerun
  picks the same ones) an initial activation follows (``PUT {hub}/usage/activation``), which
  makes it ``licensed``; a proposed ``cancelled``/``blocked`` is confirmed as such.
- as portal (``PUT [/portal]/entitlements``): a proposed URL status ``initialized`` is
  confirmed ``processed``; ``cancelled``/``blocked`` are confirmed as such.
- as seller (``PUT [/seller]/deliveryorders/confirmations``): records the confirmation.
- as school administration system (``GET [/administration]/enrollments/school/{id}``,
  seed 004): answers the Enrollment of ``id`` from a configurable table, 404 otherwise.
- as licence registry also ``GET [/registry]/usage/contracts/{id}`` (seed 001): the
  DeliveryOrderUsage of what it has received and confirmed for that contract (one object
  for one delivery order, an array for several), 404 for an unknown contract.

Confirmations go to ``PUT {hub}/entitlements/confirmations`` with a token the simulator
gets from the hub's ``/oauth2/token/`` with its own client credentials (through
``aanspraak.outbound``, retried like the hub retries). A repeated ``entitlementReferenceId``
is answered 200 again but confirmed only once. ``fail_share`` of the hub's requests get a
503, ``slow_share`` are answered after ``slow_seconds``. The simulator can also serve
``POST /oauth2/token`` for the hub's own client-credentials calls to it.

With one role the paths work without the prefix; with several, use the prefixes as the
parties' baseUrls (``http://127.0.0.1:9100/registry``, ``.../portal``, ``.../seller``).
``GET /_simulator`` answers counters as JSON.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import json
import logging
import random
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aanspraak.api.errors import status_body
from aanspraak.choices import FunctionalCode as Code
from aanspraak.outbound import AttemptOutcome, Endpoint, send

from .config import (
    ADMINISTRATION,
    MAX_SEND_TRIES,
    PORTAL,
    REGISTRY,
    SELLER,
    USAGE_TOTALS,
    Counters,
    ReceivedMessage,
    Sent,
    SimulatorConfig,
)

log = logging.getLogger(__name__)


def _now_z() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PartySimulator:
    """The simulator; ``start()`` serves in a background thread, ``serve_forever()`` in the
    calling one. ``received`` and ``sent`` record the traffic (for tests)."""

    def __init__(self, config: SimulatorConfig):
        if not config.roles:
            raise ValueError("play at least one role: registry, portal, seller or administration")
        self.config = config
        self.rng = random.Random(config.seed)
        self.lock = threading.Lock()
        self.counters = Counters()
        self.received: list[ReceivedMessage] = []
        self.sent: list[Sent] = []
        self.seen_references: set[str] = set()
        self.issued_tokens: set[str] = set()
        # As registry: entitlementId -> {deliveryOrderId, contractId, status} (status None
        # until confirmed), the source of GET /usage/contracts/{id}.
        self.registry_entitlements: dict[str, dict] = {}
        self.gets: list[ReceivedMessage] = []
        self._jobs: list = []
        self._job_seq = itertools.count()
        self._wakeup = threading.Condition()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="simulator-send")
        self.server = ThreadingHTTPServer((config.host, config.port), self._handler_class())
        self.server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PartySimulator:
        self._start_scheduler()
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        self._start_scheduler()
        try:
            self.server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start_scheduler(self) -> None:
        thread = threading.Thread(target=self._run_scheduler, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- scheduling of answers ------------------------------------------------------------

    def _schedule(self, delay: float, job) -> None:
        with self._wakeup:
            heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._job_seq), job))
            self._wakeup.notify()

    def _run_scheduler(self) -> None:
        while not self._stopping.is_set():
            with self._wakeup:
                if not self._jobs:
                    self._wakeup.wait(0.5)
                    continue
                due, _, job = self._jobs[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wakeup.wait(min(wait, 0.5))
                    continue
                heapq.heappop(self._jobs)
            self._pool.submit(job)

    def _hub_endpoint(self, role: str) -> Endpoint:
        credentials = self.config.registry_client if role == REGISTRY else self.config.portal_client
        client_id, secret = credentials or ("", "")
        hub = self.config.hub_url.rstrip("/")
        return Endpoint(
            base_url=hub,
            token_url=f"{hub}/oauth2/token/" if client_id else "",
            client_id=client_id,
            client_secret=secret,
            name=f"hub (as {role})",
        )

    def _send_to_hub(self, role: str, path: str, body: dict, tries: int = 1) -> None:
        result = send(self._hub_endpoint(role), "PUT", path, body)
        with self.lock:
            self.sent.append(Sent(path, body, result.http_status, result.outcome.value))
        if result.outcome is AttemptOutcome.DELIVERED:
            with self.lock:
                if path.endswith("activation"):
                    self.counters.activations_sent += 1
                else:
                    self.counters.confirmations_sent += 1
            return
        if result.outcome is AttemptOutcome.RETRY and tries < MAX_SEND_TRIES:
            backoff = min(30.0, 0.2 * 2**tries) * self.rng.random() + (result.retry_after or 0)
            self._schedule(backoff, lambda: self._send_to_hub(role, path, body, tries + 1))
            return
        with self.lock:
            self.counters.send_failures += 1
        log.warning("hub refused %s: %s", path, result.error)

    # --- answering the hub's requests -----------------------------------------------------

    def _licensed(self, entitlement_id: str) -> bool:
        digest = hashlib.sha256(entitlement_id.encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.config.licensed_share

    def _on_entitlement_request(self, role: str, body: dict) -> tuple[int, dict]:
        reference = body.get("entitlementReferenceId")
        entitlement = body.get("entitlement")
        if not isinstance(reference, str) or not isinstance(entitlement, dict):
            return 400, status_body(Code.SCHEMA_INCORRECT, "entitlementReferenceId and entitlement")
        with self.lock:
            duplicate = reference in self.seen_references
            self.seen_references.add(reference)
            if duplicate:
                self.counters.duplicates += 1
        if duplicate:
            return 200, {"entitlementReferenceId": reference, "duplicate": True}
        base = {
            "entitlementReferenceId": reference,
            "entitlementId": entitlement.get("entitlementId"),
            "productId": entitlement.get("productId"),
        }
        if role == REGISTRY:
            proposed = entitlement.get("entitlementStatus")
            with self.lock:
                entry = self.registry_entitlements.setdefault(
                    str(entitlement.get("entitlementId")), {"status": None}
                )
                entry["deliveryOrderId"] = entitlement.get("deliveryOrderId")
                entry["contractId"] = entitlement.get("contractId")
            answer = "entitled" if proposed == "created" else proposed
            self._schedule(self.config.delay, lambda: self._confirm_registry(base, answer))
            if proposed == "created" and self._licensed(str(entitlement.get("entitlementId"))):
                self._schedule(self.config.delay * 2, lambda: self._activate(entitlement))
        else:
            mine = [
                u
                for u in entitlement.get("urlStatuses") or []
                if u.get("portal") == self.config.portal_id
            ]
            if not mine:
                missing = f"no urlStatuses entry for portal {self.config.portal_id}"
                return 400, status_body(Code.SCHEMA_INCORRECT, missing)
            proposed = mine[0].get("urlStatus")
            answer = "processed" if proposed == "initialized" else proposed
            self._schedule(self.config.delay, lambda: self._confirm_portal(base, answer))
        return 202, {"entitlementReferenceId": reference}

    def _record_status(self, entitlement_id, status: str) -> None:
        with self.lock:
            entry = self.registry_entitlements.get(str(entitlement_id))
            if entry is not None:
                entry["status"] = status

    def contract_usage(self, contract_id: str) -> dict | list | None:
        """The registry's DeliveryOrderUsage of a contract (None: unknown contract)."""
        orders: dict[str, dict] = {}
        with self.lock:
            items = [
                (eid, dict(e))
                for eid, e in self.registry_entitlements.items()
                if e.get("contractId") == contract_id
            ]
        for entitlement_id, entry in sorted(items):
            usage = orders.setdefault(
                entry["deliveryOrderId"],
                {
                    "deliveryOrderId": entry["deliveryOrderId"],
                    **{key: 0 for key in USAGE_TOTALS.values()},
                    "entitlements": [],
                },
            )
            if entry["status"] is None:
                continue  # received, not yet confirmed
            if entry["status"] in USAGE_TOTALS:
                usage[USAGE_TOTALS[entry["status"]]] += 1
            usage["entitlements"].append(
                {"entitlementId": entitlement_id, "entitlementStatus": entry["status"]}
            )
        if not orders:
            return None
        usages = list(orders.values())
        return usages[0] if len(usages) == 1 else usages

    def enrollment(self, enrollment_id: str) -> dict | None:
        return (self.config.enrollments or {}).get(enrollment_id)

    def _on_get(self, path: str) -> tuple[int, dict | list]:
        from urllib.parse import unquote

        bare = path.split("?", 1)[0].rstrip("/")
        for role, prefix in (
            (ADMINISTRATION, "/enrollments/school/"),
            (REGISTRY, "/usage/contracts/"),
        ):
            if role not in self.config.roles:
                continue
            for lead in (f"/{role}", ""):
                if bare.startswith(lead + prefix):
                    key = unquote(bare[len(lead + prefix) :])
                    found = (
                        self.enrollment(key) if role == ADMINISTRATION else self.contract_usage(key)
                    )
                    if found is None:
                        return 404, status_body(Code.OTHER, f"no {prefix[1:-1]} {key}")
                    return 200, found
        return 404, status_body(Code.OTHER, "not found")

    def _confirm_registry(self, base: dict, status: str) -> None:
        self._record_status(base.get("entitlementId"), status)
        body = {
            **base,
            "entitlementReceiveId": str(uuid.uuid4()),
            "processedTimestamp": _now_z(),
            "newEntitlementStatus": status,
        }
        self._send_to_hub(REGISTRY, "entitlements/confirmations", body)

    def _confirm_portal(self, base: dict, url_status: str) -> None:
        body = {
            **base,
            "entitlementReceiveId": str(uuid.uuid4()),
            "processedTimestamp": _now_z(),
            "newUrlStatus": {"portal": self.config.portal_id, "urlStatus": url_status},
        }
        self._send_to_hub(PORTAL, "entitlements/confirmations", body)

    def _activate(self, entitlement: dict) -> None:
        spec = entitlement.get("entitlementSpecification") or {}
        user = spec.get("user")
        if not user:
            # An activation code is redeemed by someone: the registry reports who.
            digest = hashlib.sha256(str(entitlement.get("entitlementId")).encode()).hexdigest()
            user = {"userMasterIdentifier": f"https://ketenid.nl/201703/sim-{digest[:32]}"}
        body = {
            "initialActivationReferenceId": str(uuid.uuid4()),
            "entitlementId": entitlement.get("entitlementId"),
            "productId": entitlement.get("productId"),
            "entitlementType": entitlement.get("entitlementType"),
            "school": spec.get("school"),
            "user": user,
            "activationTimestamp": _now_z(),
        }
        self._record_status(entitlement.get("entitlementId"), "licensed")
        self._send_to_hub(REGISTRY, "usage/activation", body)

    def _route(self, path: str) -> tuple[str | None, str]:
        """(role, rest) for a request path; role None when it cannot be told."""
        path = path.split("?", 1)[0].rstrip("/")
        for role in (REGISTRY, PORTAL, SELLER):
            prefix = f"/{role}/"
            if path.startswith(prefix) and role in self.config.roles:
                return role, "/" + path[len(prefix) :]
        if path == "/entitlements":
            roles = [r for r in self.config.roles if r in (REGISTRY, PORTAL)]
            return (roles[0] if len(roles) == 1 else None), path
        if path == "/deliveryorders/confirmations":
            return (SELLER if SELLER in self.config.roles else None), path
        return None, path

    def _issue_token(self) -> dict:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.issued_tokens.add(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def _handler_class(self):
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                log.debug("simulator: " + fmt, *args)

            def _reply(self, status: int, body: dict | list) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw) if raw else None
                except ValueError:
                    return None

            def do_GET(self):
                if self.path.rstrip("/") == "/_simulator":
                    with simulator.lock:
                        counters = dict(simulator.counters.__dict__)
                    self._reply(200, {"roles": simulator.config.roles, **counters})
                    return
                if simulator.config.require_token:
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in simulator.issued_tokens:
                        self._reply(401, status_body(Code.OTHER, "token required"))
                        return
                with simulator.lock:
                    simulator.gets.append(ReceivedMessage("", self.path, {}, dict(self.headers)))
                status, answer = simulator._on_get(self.path)
                self._reply(status, answer)

            def do_POST(self):
                self._body()
                if self.path.rstrip("/").endswith("/oauth2/token"):
                    self._reply(200, simulator._issue_token())
                else:
                    self._reply(405, status_body(Code.OTHER, "method not allowed"))

            def do_PUT(self):
                body = self._body()
                role, rest = simulator._route(self.path)
                if role is None:
                    self._reply(404, status_body(Code.OTHER, f"no role at {self.path}"))
                    return
                if simulator.config.require_token:
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in simulator.issued_tokens:
                        self._reply(401, status_body(Code.OTHER, "token required"))
                        return
                with simulator.lock:
                    simulator.counters.received += 1
                    failing = simulator.rng.random() < simulator.config.fail_share
                    slow = not failing and simulator.rng.random() < simulator.config.slow_share
                    if failing:
                        simulator.counters.failed_on_purpose += 1
                    if slow:
                        simulator.counters.slow_on_purpose += 1
                if failing:
                    self._reply(503, status_body(Code.OTHER, "simulated failure"))
                    return
                if slow:
                    time.sleep(simulator.config.slow_seconds)
                if not isinstance(body, dict):
                    self._reply(400, status_body(Code.SCHEMA_INCORRECT, "body must be JSON object"))
                    return
                with simulator.lock:
                    simulator.received.append(ReceivedMessage(role, rest, body, dict(self.headers)))
                if role == SELLER and rest == "/deliveryorders/confirmations":
                    with simulator.lock:
                        simulator.counters.seller_confirmations += 1
                    self._reply(200, {"received": body.get("deliveryOrderReferenceId")})
                elif role in (REGISTRY, PORTAL) and rest == "/entitlements":
                    status, answer = simulator._on_entitlement_request(role, body)
                    self._reply(status, answer)
                else:
                    self._reply(404, status_body(Code.OTHER, f"no such path {rest}"))

        return Handler
