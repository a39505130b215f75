"""``benchmarks/gc_log``: any Python process started with it on PYTHONPATH writes what its
garbage collections took."""

import os
import subprocess
import sys
from pathlib import Path

GC_LOG = Path(__file__).resolve().parents[2] / "benchmarks" / "gc_log"


def test_a_process_writes_its_collections_per_generation(tmp_path):
    program = (
        "import gc\n"
        "for _ in range(3):\n"
        "    a = []; a.append(a)\n"  # a cycle for the collector to find
        "    gc.collect(1)\n"
        "gc.collect()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(GC_LOG), "BENCH_GC_LOG": str(tmp_path)}
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    (written,) = tmp_path.iterdir()
    assert written.name.split("-")[0].isdigit()  # <pid>-<program>.txt
    generations = {
        line.split()[0]: dict(field.split("=") for field in line.split()[1:])
        for line in written.read_text().splitlines()[1:]
    }
    # at least the program's own (start-up may add some)
    assert int(generations["gen1"]["n"]) >= 3 and int(generations["gen2"]["n"]) >= 1
    assert set(generations["gen2"]) == {"n", "total", "max", "median"}


def test_without_a_directory_it_does_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(GC_LOG)}
    env.pop("BENCH_GC_LOG", None)
    program = "import gc, sys; gc.collect(); sys.exit(0 if not gc.callbacks else 1)"
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60, cwd=tmp_path)
