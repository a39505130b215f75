"""The README's first command: the demo runs the whole loop on the embedded default."""

import os
import subprocess
import sys

from tests.support.processes import ROOT, free_port


def test_demo_settles_on_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "demo",
            "--exit-when-settled",
            "--port",
            str(free_port()),
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "login admin / " in result.stdout
    assert "demo-seller / demo-seller-secret" in result.stdout
    assert "Demo order settled" in result.stdout
    assert (tmp_path / "data" / "aanspraak.sqlite3").exists()
    assert "Traceback" not in result.stderr


def test_a_second_signal_during_the_cleanup_does_not_cut_it_short():
    """A child that ignores SIGTERM (a worker finishing its tasks) is still killed when the
    demo gets a second SIGTERM while it waits for that child; nothing is left running."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from aanspraak.simulation import demo

    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    assert stubborn.stdout.readline() == b"ready\n"
    willing = subprocess.Popen(["sleep", "60"], start_new_session=True)
    before = {sig: signal.getsignal(sig) for sig in demo.STOP_SIGNALS}
    demo.stop_on_termination()  # what the command does: SIGTERM becomes KeyboardInterrupt
    second = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        second.start()
        demo.stop_processes([stubborn, willing], grace=1.0)
        demo.stop_processes([stubborn, willing], grace=1.0)  # again: nothing to do, no error
    finally:
        second.cancel()
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert stubborn.poll() == -signal.SIGKILL
    assert willing.poll() == -signal.SIGTERM


def test_two_signals_at_once_start_one_cleanup_that_runs_to_its_end():
    """What ``timeout … make demo`` does: make and the demo both get the signal, so two arrive
    together. The first starts the cleanup; the second must not interrupt it."""
    import os
    import signal
    import subprocess
    import time

    from aanspraak.simulation import demo

    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    before = {sig: signal.getsignal(sig) for sig in demo.STOP_SIGNALS}
    demo.stop_on_termination()
    try:
        try:
            subprocess.Popen(["sh", "-c", f"kill -TERM {os.getpid()}; kill -TERM {os.getpid()}"])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the demo's "serving" loop
                time.sleep(0.01)
            raise AssertionError("no signal arrived")
        except KeyboardInterrupt:
            pass
        finally:
            demo.stop_processes([child], grace=1.0)
        time.sleep(0.2)  # a late second signal would land here, outside any handler
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert child.poll() == -signal.SIGTERM
