"""Fixtures of the end-to-end tests: a Redis of the test's own."""

from __future__ import annotations

import socket

import pytest

from tests.support.processes import LoggedProcess, free_port, wait_for


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test only (no persistence), startable and stoppable."""
    port = free_port()
    server = LoggedProcess(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], None, tmp_path
    )
    server.ready = lambda: port_open(port)

    def stop():
        server.stop()
        wait_for(lambda: not port_open(port), timeout=10, what="redis down")

    server.url = f"redis://127.0.0.1:{port}/0"
    server.up, server.down = server.start, stop
    server.start()
    yield server
    server.stop()
