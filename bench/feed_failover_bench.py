"""Feed failover with the full trial counts: runs the failover tests of marketdata/tests/test_feed.py
with FEED_TRIALS=20 against brokersim and PostgreSQL, and reports p50/max per scenario.

    .venv/bin/python bench/feed_failover_bench.py [--trials 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    timings = Path(tempfile.mkdtemp()) / "timings.jsonl"
    env = dict(os.environ, FEED_TRIALS=str(args.trials), FEED_TIMINGS_FILE=str(timings))
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/algomirror")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "marketdata/tests/test_feed.py", "-k", "closed or stopped or stall"],
        cwd=ROOT,
        env=env,
    )
    rows = [json.loads(x) for x in timings.read_text().splitlines()] if timings.exists() else []
    for row in rows:
        s = row["seconds"]
        print(
            f"{row['scenario']:<26} n={len(s):<3} p50 {statistics.median(s) * 1000:7.0f} ms   "
            f"max {max(s) * 1000:7.0f} ms"
        )
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
