from django.urls import path

from . import orderform_views, views

urlpatterns = [
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/symbol-check/", orderform_views.symbol_check, name="order_symbol_check"),
    path("orders/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("orders/order/<int:pk>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/order/<int:pk>/modify/", views.order_modify, name="order_modify"),
    path("books/", views.books, name="books"),
    path("books/refresh/", views.books_refresh, name="books_refresh"),
    path("positions/<int:pk>/close/", views.position_close, name="position_close"),
    path("accounts/<int:pk>/cancel-all/", views.account_cancel_all, name="account_cancel_all"),
    path("accounts/<int:pk>/close/", views.account_close, name="account_close"),
    path("accounts/<int:pk>/state/", views.account_state, name="account_state"),
    path("accounts/<int:pk>/repair/", views.position_repair, name="position_repair"),
]
