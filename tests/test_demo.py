"""The README's first command: the demo runs the whole loop on the embedded default."""

import os
import subprocess
import sys

from tests.processes import ROOT, free_port


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
