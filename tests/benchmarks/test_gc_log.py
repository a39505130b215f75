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
    lines = written.read_text().splitlines()
    gen1 = next(line for line in lines if line.startswith("gen1 "))
    gen2 = next(line for line in lines if line.startswith("gen2 "))
    assert "n=3 " in gen1 and "n=1 " in gen2
    assert "total=" in gen2 and "max=" in gen2 and "median=" in gen2


def test_without_a_directory_it_does_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(GC_LOG)}
    env.pop("BENCH_GC_LOG", None)
    program = "import gc, sys; gc.collect(); sys.exit(0 if not gc.callbacks else 1)"
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60, cwd=tmp_path)
