"""The other parties as the benchmark needs them: a keep-alive HTTP/1.1 server on loopback
that answers every request at once, so that what is measured is the hub.

- ``POST /token``: an OAuth2 client-credentials token (the hub's outbound client asks once);
- every other request: ``202 Accepted`` with no body, counted per path prefix.
- ``GET /_counts``: the counts as JSON (``{"/registry": 10000, ...}``); ``DELETE /_counts``
  resets them.
- ``POST /_record`` starts keeping every counted request (method, path, body);
  ``GET /_recorded`` returns them as JSON lines and stops: the floor client sends the hub's
  own bytes.

It parses just enough HTTP (request line, ``Content-Length``) to stay far from being the
bottleneck: one asyncio process serves well over ten thousand requests a second here, several
times what the hub or the floor client sends.

    python -m benchmarks.party_server --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import Counter

TOKEN = json.dumps(
    {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 86400}
).encode()


def _response(status: str, body: bytes = b"", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + body


ACCEPTED = _response("202 Accepted")


class PartyProtocol(asyncio.Protocol):
    """One connection: requests may arrive pipelined or split over several reads."""

    counts: Counter = Counter()
    recording: list | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            method, path, _ = head.split(" ", 2)
            self.transport.write(self._answer(method, path, body))

    def _answer(self, method: str, path: str, body: bytes) -> bytes:
        if path.startswith("/token"):
            return _response("200 OK", TOKEN)
        if path.startswith("/_counts"):
            if method == "DELETE":
                self.counts.clear()
            return _response("200 OK", json.dumps(dict(self.counts)).encode())
        if path.startswith("/_recorded"):
            lines = PartyProtocol.recording or []
            PartyProtocol.recording = None
            return _response("200 OK", b"\n".join(lines), "application/x-ndjson")
        if path.startswith("/_record"):
            PartyProtocol.recording = []
            return _response("200 OK", b"{}")
        if self.recording is not None:
            self.recording.append(
                json.dumps({"method": method, "path": path, "body": body.decode()}).encode()
            )
        prefix = "/" + path.lstrip("/").split("/", 1)[0]
        self.counts[prefix] += 1
        return ACCEPTED


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(PartyProtocol, "127.0.0.1", port, backlog=1024)
    print(f"party server on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
