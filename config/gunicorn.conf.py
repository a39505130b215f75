"""gunicorn's configuration of the hub's web processes (``gunicorn -c config/gunicorn.conf.py
config.wsgi``). The benchmark runs its floors under this same file, so hub and floor are
compared under the same server settings (docs/performance.md).

Every value can be overridden from the environment; docs/operations.md says when to.
"""

import os
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One process per core: the request paths are short and CPU-bound once the database answers.
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 2)))
# Threads per process: more than one makes gunicorn's gthread worker, which keeps client
# connections alive and overlaps a request's database round trips with another's Python
# (measured: about 2.5x the requests per second of sync workers on the confirmation path,
# docs/performance.md). Each thread holds its own database connection.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
# Long streamed reads (a delivery order of 100,000 entitlements) must not be cut off.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Access logs belong to the proxy in front; set GUNICORN_ACCESS_LOG=- to log here too.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None

# prometheus_client's multiprocess directory, with config/settings.py's default: the master
# loads no settings, and its workers inherit the variable (docs/operations.md, "Metrics").
_data_dir = os.environ.get("HUB_DATA_DIR") or Path(__file__).resolve().parent.parent / "var"
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(_data_dir) / "prometheus"))


def post_worker_init(worker):
    """The app is loaded: load every view module too (the URLconf), then freeze that heap so
    the garbage collector's full collections skip it. Unfrozen, each walked it all and stopped
    every thread of the process for 110-157 ms under load (docs/performance.md, "Garbage
    collection")."""
    import gc

    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view)
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    """A worker is gone: prometheus_client drops its live gauges' files (its counters stay
    counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
