"""`python -m brokersim --accounts N --seed S [--base-port P] [--accounts-file F] [--profile NAME]`.

Listens on 127.0.0.1 unless `--host` says otherwise; on any other address the /_sim control API
(reset, faults, prices, stop) needs a token (`--control-token` or BROKERSIM_CONTROL_TOKEN) on every
request. The accounts file holds every paper account's API key: it is written 0600."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import signal
import sys

from . import profiles
from .simulator import Simulator

WIRE_PROFILES = ("mixed", "sandbox", "live")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m brokersim", description="OpenAlgo-compatible paper broker")
    p.add_argument("--accounts", type=int, default=3, help="number of simulated OpenAlgo instances (default 3)")
    p.add_argument("--seed", type=int, default=1, help="market seed (default 1)")
    p.add_argument(
        "--base-port",
        type=int,
        default=5100,
        help="instance i serves REST on P+i and WebSocket on P+3000+i; 0 picks free ports (default 5100)",
    )
    p.add_argument("--accounts-file", help="write the accounts JSON list here (mode 0600: it holds the API keys)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); any other needs a control token",
    )
    p.add_argument(
        "--control-token",
        default=os.environ.get("BROKERSIM_CONTROL_TOKEN", ""),
        help="token every /_sim control request must carry (X-Sim-Token or Authorization: Bearer); "
        "default $BROKERSIM_CONTROL_TOKEN; required when --host is not loopback",
    )
    p.add_argument("--tick-rate", type=float, default=5.0, help="market ticks per second (default 5)")
    p.add_argument("--start", help="simulated start time, ISO 8601 (default: now)")
    p.add_argument(
        "--profile",
        choices=WIRE_PROFILES + tuple(profiles.PROFILES),
        default="mixed",
        help="response profile: sandbox (numbers), live (strings) or mixed (alternating); "
        "or a broker profile for every instance (clean, zerodha, dhan, xts, angel, dead_token, semi_auto)",
    )
    p.add_argument(
        "--profiles",
        help="broker profiles dealt to the instances in turn, comma-separated (e.g. clean,zerodha,semi_auto)",
    )
    p.add_argument("--api-rate-limit", type=int, default=50, help="API_RATE_LIMIT per second (default 50)")
    p.add_argument("--order-rate-limit", type=int, default=10, help="ORDER_RATE_LIMIT per second (default 10)")
    p.add_argument("--history-days", type=int, default=20, help="days of seeded history (default 20)")
    p.add_argument("--record", help="write every market tick to this JSONL file")
    p.add_argument("--replay", help="play back a file written by --record, tick for tick")
    p.add_argument("--fast", action="store_true", help="tick as fast as possible instead of in real time")
    p.add_argument("--max-ticks", type=int, help="stop after this many ticks")
    p.add_argument(
        "--auto-rollover",
        action="store_true",
        help="run the daily rollover as the market clock crosses its times (MIS square-off 15:15, MCX 23:30; "
        "day orders expire at the close; books cleared at 03:00 IST); otherwise only POST /_sim/rollover does",
    )
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    if args.accounts < 0 or args.tick_rate <= 0:
        p.error("--accounts must be >= 0 and --tick-rate > 0")
    if not is_loopback(args.host) and not args.control_token:
        p.error(
            f"--host {args.host} is not loopback: anyone who reaches it could reset books, arm faults or stop "
            "instances through /_sim; give --control-token (or set BROKERSIM_CONTROL_TOKEN)"
        )
    # --profile takes either kind: a wire profile (how numbers are rendered) or a broker profile
    # (which brings its own wire profile when it is a real broker's).
    args.broker_profiles = None
    if args.profile not in WIRE_PROFILES:
        if args.profiles:
            p.error("give a broker profile with --profile or --profiles, not both")
        args.broker_profiles, args.profile = [args.profile], "mixed"
    elif args.profiles:
        args.broker_profiles = [n.strip() for n in args.profiles.split(",") if n.strip()]
        unknown = [n for n in args.broker_profiles if n not in profiles.PROFILES]
        if unknown or not args.broker_profiles:
            p.error(f"--profiles: unknown {unknown}; profiles are {', '.join(profiles.PROFILES)}")
    return args


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def write_private(path: str, text: str) -> None:
    """Write `path` atomically, readable by its user only (it holds API keys), whatever the umask."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover .tmp keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


async def main(args: argparse.Namespace) -> int:
    replay = None
    if args.replay:
        with open(args.replay) as fh:
            replay = [json.loads(line) for line in fh if line.strip()]
        if not replay:
            print(f"brokersim: {args.replay} holds no ticks", file=sys.stderr)
            return 2
    start = dt.datetime.fromisoformat(args.start) if args.start else None
    if start is not None and start.tzinfo is None:
        print("brokersim: --start needs a UTC offset, e.g. 2026-11-20T10:00:00+05:30", file=sys.stderr)
        return 2
    sim = Simulator(
        accounts=args.accounts,
        seed=args.seed,
        start=start,
        tick_rate=args.tick_rate,
        profile=args.profile,
        broker_profiles=args.broker_profiles,
        api_rate_limit=args.api_rate_limit,
        order_rate_limit=args.order_rate_limit,
        replay=replay,
        record_path=args.record,
        fast=args.fast,
        max_ticks=args.max_ticks,
        history_days=args.history_days,
        auto_rollover=args.auto_rollover,
        host=args.host,
        control_token=args.control_token,
    )
    try:
        await sim.start(args.base_port)
    except OSError as e:
        print(f"brokersim: cannot bind ports from {args.base_port}: {e}", file=sys.stderr)
        await sim.close()
        return 1
    accounts = [inst.info() for inst in sim.instances]
    text = json.dumps(accounts, indent=2)
    if args.accounts_file:
        write_private(args.accounts_file, text + "\n")
    print(text, flush=True)
    print(f"brokersim: {len(accounts)} paper accounts, seed {args.seed}, {args.tick_rate:g} ticks/s", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = asyncio.create_task(sim.run_ticks())
    ticker.add_done_callback(lambda _: stop.set() if args.max_ticks or args.replay else None)
    await stop.wait()
    ticker.cancel()
    await sim.close()
    if args.accounts_file and os.path.exists(args.accounts_file):
        os.remove(args.accounts_file)  # a stale file would point clients at dead ports
    return 0


if __name__ == "__main__":
    a = parse_args()
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(a)))
