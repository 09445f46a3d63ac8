from django.urls import path

from .consumers import MarketDataConsumer

websocket_urlpatterns = [path("ws/marketdata/", MarketDataConsumer.as_asgi())]
