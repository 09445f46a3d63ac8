"""Work a page asks for and a worker does, now kept in `enqueue` with the other hand-offs to
Celery (one lazy import of the tasks module); re-exported here for the views that import it."""

from .enqueue import books_refresh_request, orders_cancel_all_request

__all__ = ["books_refresh_request", "orders_cancel_all_request"]
