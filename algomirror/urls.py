from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

# The admin's own login form would skip the lockout and the second factor: allauth's login (with
# both) is the only way in, and /admin/login/ hands over to it.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("auth/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("marketdata/", include("marketdata.urls")),
    path("trading/", include("trading.urls")),
    path("", include("accounts.urls")),
]
