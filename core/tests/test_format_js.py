"""The pages' formatter (static/js/format.js) prints what the server prints: one table of values
through core.money / core.timefmt and, in node, through AM.num / AM.inr / AM.ist."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from core.money import inr, rupees
from core.timefmt import ist

FORMAT_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "format.js"
NODE = shutil.which("node")

MONEY = [0, -0.004, 0.005, -0.005, 1.005, 2.675, -2.5, 999, -1000, 1561.25, -1561.25, 123456, 1234567.891]
MONEY += [-98765432.105, 99999.995, 10000000, "320.66", "-1561.25", None, ""]
INSTANTS = [
    "2026-12-02T05:02:29+00:00",
    "2026-12-02T05:02:29.999000+00:00",
    "2026-12-02T10:32:29+05:30",
    "2026-12-31T20:00:00+00:00",  # a new year in IST, not yet in UTC
    "2026-09-07T03:45:00+00:00",  # "Sep", whatever the browser's locale calls it
    "2027-02-28T18:29:59+00:00",
    "2024-02-29T00:00:00+05:30",
    "1999-01-01T00:00:00+00:00",
]


def run_js(script: str, data) -> list:
    if NODE is None:
        pytest.skip("node is not installed")
    prog = f"globalThis.window = globalThis;\nrequire({json.dumps(str(FORMAT_JS))});\n"
    prog += f"const data = {json.dumps(data)};\nconsole.log(JSON.stringify({script}));\n"
    out = subprocess.run([NODE, "-e", prog], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def test_money_the_same_in_the_page_and_on_the_server():
    got = run_js("data.map(v => [AM.num(v), AM.inr(v)])", MONEY)
    assert got == [[inr(v), rupees(v)] for v in MONEY]
    assert rupees(-1561.25) == "\u2212₹1,561.25"


def test_times_the_same_in_the_page_and_on_the_server(monkeypatch):
    # The server's answer does not depend on the machine's zone; neither may the page's.
    expected = [ist(dt.datetime.fromisoformat(v)) for v in INSTANTS]
    for tz in ("UTC", "America/New_York", "Asia/Kolkata"):
        monkeypatch.setenv("TZ", tz)
        assert run_js("data.map(v => AM.ist(v))", INSTANTS) == expected, tz
    assert expected[0] == "02 Dec 2026, 10:32:29 IST"


def test_no_time_in_the_page():
    assert run_js("[AM.ist(null), AM.ist(''), AM.istTime(null), AM.ist('soon')]", None) == [
        "—",
        "—",
        "not yet",
        "soon",
    ]
