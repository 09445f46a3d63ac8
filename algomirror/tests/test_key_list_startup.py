"""A malformed ENCRYPTION_KEY stops every process at settings load (finding 6), naming the entry,
never the key."""

from __future__ import annotations

from algomirror.tests.test_settings import manage, production_env


def test_a_trailing_comma_in_encryption_key_stops_start_up(tmp_path):
    env = production_env(tmp_path)
    key = env["ENCRYPTION_KEY"]
    env["ENCRYPTION_KEY"] = key + ","
    done = manage("check", **env)
    assert done.returncode != 0
    assert "ENCRYPTION_KEY: entry 2 of 2 is empty (a trailing or doubled comma?)" in done.stderr
    assert "Refusing to start." in done.stderr and key not in done.stderr + done.stdout


def test_a_bad_key_file_stops_start_up(tmp_path):
    env = production_env(tmp_path)
    del env["ENCRYPTION_KEY"]
    (tmp_path / "keys").write_text("not-a-key\n")
    done = manage("check", ENCRYPTION_KEY_FILE=str(tmp_path / "keys"), **env)
    assert done.returncode != 0
    assert "entry 1 of 1 is not a Fernet key" in done.stderr and "not-a-key" not in done.stderr
