"""Load generators: ``wrk`` (Debian's package) for the closed-loop scenarios, a paced asyncio
client for the open-loop end-to-end scenario, and concurrent psycopg readers for the
database floors.

wrk reports through a Lua ``done`` hook that prints one JSON line: requests, errors and the
latency percentiles the report and the plot need.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .stack import LOG_DIR

PERCENTILES = [*range(1, 100), 99.5, 99.9, 99.99, 100]

_DONE_LUA = """
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {{}}
  for _, p in ipairs({{{percentiles}}}) do
    parts[#parts + 1] = string.format("[%g, %.3f]", p, latency:percentile(p) / 1000.0)
  end
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_s": %.3f, "bytes": %d, "errors": ' ..
    '{{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}, ' ..
    '"percentiles_ms": [%s]}}\\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", ")))
end
""".format(percentiles=", ".join(str(p) for p in PERCENTILES))

# Each request takes the next line of the body file ("prefix<TAB>suffix") and puts a receive
# id unique to the run, thread and request between the two halves.
_UNIQUE_PUT_LUA = """
local lines = {}
local counter = 0
local threads = 0
local run = "run"
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\\t", 1, true)
    lines[#lines + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
  end
  run = args[2]
end
function request()
  counter = counter + 1
  local body = lines[(counter % #lines) + 1]
  local rid = string.format("%s-%d-%d", run, tid, counter)
  return wrk.format("PUT", nil, nil, body[1] .. rid .. body[2])
end
"""


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    duration_s: float
    errors: int
    percentiles_ms: list[tuple[float, float]] = field(default_factory=list)
    bytes: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, p: float) -> float:
        for q, value in self.percentiles_ms:
            if q >= p:
                return value
        return self.percentiles_ms[-1][1] if self.percentiles_ms else float("nan")


def require_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("the benchmark needs wrk: apt-get install wrk")
    return path


def wrk(
    url: str,
    *,
    connections: int,
    duration_s: float,
    headers: dict[str, str],
    threads: int = 2,
    unique_put_bodies: Path | None = None,
    run_id: str = "run",
    timeout_s: float = 10,
) -> LoadResult:
    """Run wrk against ``url``; with ``unique_put_bodies``, each request is a PUT of the next
    body with a fresh ``entitlementReceiveId``."""
    script = LOG_DIR / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text((_UNIQUE_PUT_LUA if unique_put_bodies else "") + _DONE_LUA)
    args = [
        require_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(script),
    ]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    args.append(url)
    if unique_put_bodies:
        args += ["--", str(unique_put_bodies), run_id]
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration_s + 120)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            return LoadResult(
                requests=data["requests"],
                duration_s=data["duration_s"],
                errors=sum(data["errors"].values()),
                percentiles_ms=[(p, v) for p, v in data["percentiles_ms"]],
                bytes=data["bytes"],
            )
    raise RuntimeError(f"wrk gave no report:\n{done.stdout}\n{done.stderr}")


def latencies_to_result(latencies_ms: list[float], duration_s: float, errors: int) -> LoadResult:
    """A LoadResult from individual latencies (the Python load generators)."""
    ordered = sorted(latencies_ms)
    points = []
    for p in PERCENTILES:
        if ordered:
            index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
            points.append((p, ordered[index]))
    return LoadResult(len(ordered), duration_s, errors, points)


def concurrent_queries(
    dsn: str, sql: str, params: tuple, *, connections: int, duration_s: float
) -> LoadResult:
    """``connections`` psycopg connections running ``sql`` back to back for ``duration_s``,
    each fetching the whole (text) result: the database's own floor."""
    import psycopg

    latencies: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + duration_s

    def loop() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute("SET jit = off")
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                row = conn.execute(sql, params).fetchone()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    sizes.append(len(row[0]))
            conn.rollback()

    started = time.perf_counter()
    workers = [threading.Thread(target=loop) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = latencies_to_result(latencies, time.perf_counter() - started, 0)
    result.bytes = sum(sizes)
    return result


# --- the paced (open-loop) client -------------------------------------------------------------


class _AnswerReader(asyncio.Protocol):
    """One kept-alive client connection that reads HTTP/1.1 answers as they arrive.

    A protocol, not a StreamReader: one callback per answer instead of an await per header
    line, as the client shares the 2 cores with the hub it loads (docs/performance.md, P5)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                status = _take_answer(self.buffer)
            except ValueError as exc:
                self.waiter.set_exception(exc)
                return
            if status is not None:
                self.waiter.set_result(status)

    async def exchange(self, raw: bytes) -> int:
        """Send one request; its answer's status."""
        if self.closed or self.transport is None:
            raise ConnectionError("closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


def _take_answer(buffer: bytearray) -> int | None:
    """The status of the whole answer at the start of ``buffer``, removing it; None while
    it is incomplete. Reads Content-Length and chunked bodies."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    length, chunked = 0, False
    for line in head[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    at = end + 4
    if chunked:
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            at = line_end + 2 + size + 2
            if len(buffer) < at:
                return None
            if size == 0:
                break
    else:
        at += length
        if len(buffer) < at:
            return None
    del buffer[:at]
    return status


def http_request(host: str, port: int, path: str, token: str, body: bytes) -> bytes:
    """A raw keep-alive HTTP/1.1 PUT."""
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def paced_requests(
    host: str, port: int, requests: list[bytes], rate: float, on_answer, connections: int = 64
) -> tuple[int, float]:
    """Send ``requests`` at ``rate`` per second (open loop: a slow answer does not slow the
    pacing; a request waits only for a free connection) over ``connections`` kept-alive
    connections (a connection per request runs out of loopback ports at this rate);
    ``on_answer(index, status, answered_at)`` is called for each. Returns (errors, seconds
    it took to send them all)."""
    queue: asyncio.Queue = asyncio.Queue()
    errors = 0

    async def connection() -> None:
        nonlocal errors
        loop = asyncio.get_running_loop()
        reader: _AnswerReader | None = None
        while (item := await queue.get()) is not None:
            index, raw = item
            status = 0
            for _attempt in range(2):  # the server may have closed an idle connection
                try:
                    if reader is None or reader.closed:
                        _, reader = await loop.create_connection(_AnswerReader, host, port)
                    status = await reader.exchange(raw)
                    break
                except (OSError, ConnectionError, ValueError):
                    if reader is not None and reader.transport is not None:
                        reader.transport.close()
                    reader = None
            if status != 202:
                errors += 1
            on_answer(index, status, time.perf_counter())
        if reader is not None and reader.transport is not None:
            reader.transport.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    started = time.perf_counter()
    for index, raw in enumerate(requests):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, raw))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return errors, time.perf_counter() - started
