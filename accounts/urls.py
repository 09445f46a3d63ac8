from django.urls import path

from . import mailbox, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", views.account_list, name="account_list"),
    path("accounts/add/", views.account_add, name="account_add"),
    path("accounts/test/", views.connection_test, name="account_test"),
    path("accounts/paper/", views.paper_accounts, name="account_paper"),
    path("accounts/<int:pk>/edit/", views.account_edit, name="account_edit"),
    path("accounts/<int:pk>/delete/", views.account_delete, name="account_delete"),
    path("accounts/<int:pk>/data-role/", views.data_role, name="account_data_role"),
    path("audit/", views.audit_log, name="audit_log"),
    path("mailbox/", mailbox.mailbox_list, name="mailbox"),
    path("mailbox/<str:mail_id>/", mailbox.mailbox_detail, name="mailbox_mail"),
]
