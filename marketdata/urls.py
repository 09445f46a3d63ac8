from django.urls import path

from . import views

urlpatterns = [
    path("chain/", views.option_chain, name="option_chain"),
    path("feed/", views.feed_monitor, name="feed_monitor"),
    path("feed/status.json", views.feed_status_json, name="feed_status_json"),
    path("calendar/", views.calendar_page, name="marketdata_calendar"),
    path("calendar/holidays/", views.holiday_add, name="holiday_add"),
    path("calendar/specials/", views.special_add, name="special_add"),
    path("calendar/<str:kind>/<int:pk>/delete/", views.calendar_delete, name="calendar_delete"),
]
