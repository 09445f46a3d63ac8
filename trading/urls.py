from django.urls import path

from . import views

urlpatterns = [
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("books/", views.books, name="books"),
]
