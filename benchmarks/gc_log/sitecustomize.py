"""What the garbage collector costs each process of a benchmark (docs/performance.md, "Garbage
collection"): put this directory on ``PYTHONPATH`` and name a directory in ``BENCH_GC_LOG``,
then every Python process started (the hub's gunicorn and Celery processes, the floors, the
load generators) writes ``<pid>-<program>.txt`` there: per generation, the number of
collections, their total and longest duration and their median::

    mkdir -p /tmp/gc
    BENCH_GC_LOG=/tmp/gc PYTHONPATH=benchmarks/gc_log make bench BENCH_ARGS='--only P2 --no-docs'

The durations are wall-clock: a collection holds the GIL, so each one stops every thread of
its process for that long. Not used by anything else.
"""

import gc
import os
import sys
import time

_DIR = os.environ.get("BENCH_GC_LOG")


def _install(directory: str) -> None:
    durations: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def write() -> None:
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        path = os.path.join(directory, f"{os.getpid()}-{program}.txt")
        lines = [" ".join(sys.argv[:4])]
        for generation, values in durations.items():
            if values:
                ordered = [value * 1000 for value in sorted(values)]
                lines.append(
                    f"gen{generation} n={len(ordered)} total={sum(ordered):.1f}ms "
                    f"max={ordered[-1]:.2f}ms median={ordered[len(ordered) // 2]:.3f}ms"
                )
        with open(path, "w") as out:
            out.write("\n".join(lines) + "\n")

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        durations[info["generation"]].append(time.perf_counter() - started[0])
        if info["generation"]:  # after each older generation's (rarer) collection only
            write()

    gc.callbacks.append(callback)
    # A forked child (gunicorn, Celery's pool) counts its own collections only.
    os.register_at_fork(after_in_child=lambda: [values.clear() for values in durations.values()])


if _DIR:
    _install(_DIR)
