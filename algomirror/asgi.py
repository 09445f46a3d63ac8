"""ASGI entry point: Django views over HTTP, Channels consumers over WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "algomirror.settings")
django_asgi_app = get_asgi_application()

from accounts.keycheck import require_readable_keys  # noqa: E402

require_readable_keys()  # a key list that cannot read the stored data stops the web process here

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.routing import websocket_urlpatterns as accounts_ws  # noqa: E402
from algomirror.middleware import SessionLifetimeGuard  # noqa: E402
from marketdata.routing import websocket_urlpatterns as marketdata_ws  # noqa: E402
from trading.routing import websocket_urlpatterns as trading_ws  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(SessionLifetimeGuard(URLRouter(accounts_ws + marketdata_ws + trading_ws)))
        ),
    }
)
