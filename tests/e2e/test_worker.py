"""Real Celery workers run the hub's tasks in separate processes."""

import os
import subprocess
import sys

import pytest

from aanspraak.models import WorkerHeartbeat
from tests.support.processes import ROOT, CeleryWorker, wait_for


def test_worker_on_redis_runs_a_task(celery_worker_process):
    from aanspraak.tasks import heartbeat

    worker = celery_worker_process()
    heartbeat.delay()
    row = wait_for(lambda: WorkerHeartbeat.objects.first(), what="heartbeat row")
    assert row.last_seen is not None
    assert "aanspraak.tasks.heartbeat" in worker.output()


@pytest.mark.django_db
def test_embedded_default_worker_runs_a_task_in_a_separate_process(tmp_path):
    """No DATABASE_URL, no broker URL: SQLite and the filesystem broker, a real worker."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    worker = CeleryWorker(env, tmp_path, [])
    worker.start()
    try:
        subprocess.run(
            [*manage, "shell", "-c", "from aanspraak.tasks import heartbeat; heartbeat.delay()"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        count = "from aanspraak.models import WorkerHeartbeat as W; print(W.objects.count())"

        def heartbeat_written():
            out = subprocess.run(
                [*manage, "shell", "-v", "0", "-c", count],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.strip()
            return out.splitlines()[-1:] == ["1"]

        wait_for(heartbeat_written, timeout=60, interval=1, what="heartbeat in SQLite")
        assert (tmp_path / "data" / "aanspraak.sqlite3").exists()
        assert worker.proc.pid != os.getpid()
    finally:
        worker.stop()
