from django.urls import path

from . import orderform_views, views

urlpatterns = [
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/symbol-check/", orderform_views.symbol_check, name="order_symbol_check"),
    path("orders/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("orders/<int:pk>/cancel-all/", views.batch_cancel_all, name="batch_cancel_all"),
    path("orders/<int:pk>/modify-all/", views.batch_modify_all, name="batch_modify_all"),
    path("orders/<int:pk>/retry/<int:account_id>/", views.batch_retry, name="batch_retry"),
    path("orders/order/<int:pk>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/order/<int:pk>/modify/", views.order_modify, name="order_modify"),
    path("books/", views.books, name="books"),
    path("books/refresh/", views.books_refresh, name="books_refresh"),
    path("positions/<int:pk>/close/", views.position_close, name="position_close"),
    path("accounts/<int:pk>/cancel-all/", views.account_cancel_all, name="account_cancel_all"),
    path("accounts/<int:pk>/close/", views.account_close, name="account_close"),
    path("accounts/<int:pk>/closing/<str:ticket>/", views.account_closing, name="account_closing"),
    path("accounts/<int:pk>/state/", views.account_state, name="account_state"),
    path("accounts/<int:pk>/repair/", views.position_repair, name="position_repair"),
]
