from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("auth/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("marketdata/", include("marketdata.urls")),
    path("trading/", include("trading.urls")),
    path("", include("accounts.urls")),
]
