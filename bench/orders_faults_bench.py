"""Exactly-once orders with the full trial counts: runs trading's fault tests with 20 trials each
(5 brokersim faults × 20 trials of a 4-leg order on 3 accounts; 20 SIGKILLs of real Celery workers
in a 10-account fan-out) against PostgreSQL. `make test` runs 2 trials of each.

    .venv/bin/python bench/orders_faults_bench.py [--trials 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    env = dict(os.environ, ORDER_FAULT_TRIALS=str(args.trials), WORKER_KILL_TRIALS=str(args.trials))
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/algomirror")
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--timeout=3600",  # 20 trials of each outlast the suite's 300 s per test
            "trading/tests/test_orders.py::test_exactly_once_under_faults",
            "trading/tests/test_worker_faults.py",
        ],
        cwd=ROOT,
        env=env,
    )
    print(
        f"{args.trials} trials per scenario: {'all passed' if done.returncode == 0 else 'FAILED'} "
        f"in {time.monotonic() - start:.0f} s"
    )
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
