"""Feed throughput and latency: brokersim → feed → Redis → Channels (daphne) → WebSocket clients.

500 instruments at 5 ticks/s (2,500 ticks/s). Reports the feed process's CPU (share of one
core), daphne's CPU, messages delivered per second, and tick-to-client latency (brokersim's
send timestamp to the browser-side receive time) p50/p99.

    .venv/bin/python bench/feed_bench.py [--symbols 500] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SETUP = """
import json, os, django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from accounts import services
u = get_user_model().objects.create_user("bench", "b@example.com", "Bench-passphrase-123")
for e in json.load(open(os.environ["BROKERSIM_ACCOUNTS_FILE"])):
    a = services.account_create(owner=u, name=e["name"], host_url=e["host"], ws_url=e["ws_url"], api_key=e["api_key"])
    services.account_check(account_id=a.pk)
c = Client()
c.force_login(u)
print(c.cookies["sessionid"].value)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def symbols(host: str, key: str, n: int) -> list[str]:
    out: list[str] = []
    for name, spot_ex, fo in (
        ("NIFTY", "NSE_INDEX", "NFO"),
        ("BANKNIFTY", "NSE_INDEX", "NFO"),
        ("SENSEX", "BSE_INDEX", "BFO"),
    ):
        exp = httpx.post(
            f"{host}/api/v1/expiry", json={"apikey": key, "symbol": name, "exchange": fo, "instrumenttype": "options"}
        ).json()["data"][0]
        chain = httpx.post(
            f"{host}/api/v1/optionchain",
            json={
                "apikey": key,
                "underlying": name,
                "exchange": spot_ex,
                "expiry_date": exp.replace("-", ""),
                "strike_count": 50,
            },
        ).json()["chain"]
        out += [f"{fo}:{row[s]['symbol']}" for row in chain for s in ("ce", "pe")]
    return out[:n]


async def clients(url: str, cookie: str, keys: list[str], seconds: float, warmup: float) -> dict:
    lat: list[float] = []
    to_feed: list[float] = []
    count = 0
    measuring = False
    origin = url.replace("ws://", "http://").split("/ws/")[0]

    async def one(chunk: list[str]) -> None:
        nonlocal count
        async with (
            aiohttp.ClientSession(cookies={"sessionid": cookie}) as s,
            s.ws_connect(url, headers={"Origin": origin}, max_msg_size=0) as ws,
        ):
            await ws.send_json({"action": "watch", "symbols": [{"key": k, "mode": 1} for k in chunk]})
            async for msg in ws:
                m = json.loads(msg.data)
                if not measuring or m.get("type") != "prices":
                    continue
                now = time.time() * 1000
                for item in m["items"]:
                    if "tick_ts" in item:
                        lat.append(now - item["tick_ts"])
                        to_feed.append(item["ts"] - item["tick_ts"])
                        count += 1

    tasks = [asyncio.create_task(one(keys[i : i + 100])) for i in range(0, len(keys), 100)]
    await asyncio.sleep(warmup)
    measuring = True
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.monotonic() - t0
    for t in tasks:
        t.cancel()
    lat.sort()
    to_feed.sort()

    def pick(values: list[float], p: float) -> float:
        return values[min(int(len(values) * p), len(values) - 1)] if values else float("nan")

    return {
        "messages_per_s": count / elapsed,
        "p50": pick(lat, 0.5),
        "p99": pick(lat, 0.99),
        "n": len(lat),
        "feed_p50": pick(to_feed, 0.5),
        "feed_p99": pick(to_feed, 0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--tick-rate", type=float, default=5.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="feedbench-"))
    env = dict(
        os.environ,
        INSTANCE_DIR=str(tmp / "instance"),
        REDIS_URL="redis://127.0.0.1:6379/12",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        BROKERSIM_ACCOUNTS_FILE=str(tmp / "accounts.json"),
        DJANGO_SETTINGS_MODULE="algomirror.settings",
        LOG_LEVEL="WARNING",
        CACHE_KEY_PREFIX="bench",
        CHANNELS_PREFIX="bench",
    )
    subprocess.run(["redis-cli", "-n", "12", "flushdb"], check=True, capture_output=True)
    procs: list[subprocess.Popen] = []

    def spawn(*cmd: str) -> subprocess.Popen:
        p = subprocess.Popen(
            list(cmd), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        procs.append(p)
        return p

    try:
        spawn(
            PY,
            "-m",
            "brokersim",
            "--accounts",
            "2",
            "--seed",
            "1",
            "--base-port",
            "0",
            "--tick-rate",
            str(args.tick_rate),
            "--accounts-file",
            env["BROKERSIM_ACCOUNTS_FILE"],
        )
        while not Path(env["BROKERSIM_ACCOUNTS_FILE"]).exists():
            time.sleep(0.1)
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        cookie = (
            subprocess.run([PY, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        acc = json.loads(Path(env["BROKERSIM_ACCOUNTS_FILE"]).read_text())[0]
        keys = symbols(acc["host"], acc["api_key"], args.symbols)
        port = free_port()
        feed = spawn(PY, "manage.py", "run_feed")
        web = spawn(str(Path(PY).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "algomirror.asgi:application")
        time.sleep(4)
        fp, wp = psutil.Process(feed.pid), psutil.Process(web.pid)
        sp, me = psutil.Process(procs[0].pid), psutil.Process()
        warmup = 5.0

        async def run() -> dict:
            task = asyncio.create_task(
                clients(f"ws://127.0.0.1:{port}/ws/marketdata/", cookie, keys, args.seconds, warmup)
            )
            await asyncio.sleep(warmup)
            c0 = (fp.cpu_times(), wp.cpu_times(), time.monotonic(), sp.cpu_times(), me.cpu_times())
            res = await task
            c1 = (fp.cpu_times(), wp.cpu_times(), time.monotonic(), sp.cpu_times(), me.cpu_times())
            span = c1[2] - c0[2]
            res["sim_cpu"] = (c1[3].user + c1[3].system - c0[3].user - c0[3].system) / span
            res["client_cpu"] = (c1[4].user + c1[4].system - c0[4].user - c0[4].system) / span
            res["feed_cpu"] = (c1[0].user + c1[0].system - c0[0].user - c0[0].system) / span
            res["web_cpu"] = (c1[1].user + c1[1].system - c0[1].user - c0[1].system) / span
            return res

        res = asyncio.run(run())
        status = json.loads(
            subprocess.run(["redis-cli", "-n", "12", "get", "md:feed:status"], capture_output=True, text=True).stdout
            or "{}"
        )
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    print(
        f"symbols={len(keys)} tick_rate={args.tick_rate}/s offered={len(keys) * args.tick_rate:,.0f} ticks/s "
        f"window={args.seconds:.0f}s"
    )
    print(f"feed ticks/s (feed's own count)  {status.get('ticks_per_s')}")
    print(f"feed process CPU                 {res['feed_cpu'] * 100:.0f}% of one core")
    print(f"daphne CPU                       {res['web_cpu'] * 100:.0f}% of one core")
    print(f"messages delivered to clients    {res['messages_per_s']:,.0f}/s")
    print(f"tick-to-client latency           p50 {res['p50']:.1f} ms  p99 {res['p99']:.1f} ms  (n={res['n']})")
    print(f"  of which brokersim → feed      p50 {res['feed_p50']:.1f} ms  p99 {res['feed_p99']:.1f} ms")
    print(
        f"brokersim CPU                    {res['sim_cpu'] * 100:.0f}% of one core; this client "
        f"{res['client_cpu'] * 100:.0f}%"
    )


if __name__ == "__main__":
    main()
