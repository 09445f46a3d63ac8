from django.urls import path

from .consumers import BatchConsumer

websocket_urlpatterns = [path("ws/batches/<int:pk>/", BatchConsumer.as_asgi())]
