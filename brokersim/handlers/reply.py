"""How a handler answers with something other than 200: raise Reply (the gate renders it)."""

from __future__ import annotations

from typing import Any


class Reply(Exception):
    """Short-circuit a handler with a status and body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body


def err(status: int, message: Any) -> Reply:
    return Reply(status, {"status": "error", "message": message})
