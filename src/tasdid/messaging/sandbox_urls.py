"""Sandbox pages (demo only): the sandbox phone and mailbox."""

from django.urls import path

from . import sandbox_views

app_name = "sandbox"

urlpatterns = [
    path("phone", sandbox_views.phone, name="phone"),
    path("mail", sandbox_views.mail_list, name="mail"),
    path("mail/<int:message_id>", sandbox_views.mail_detail, name="mail_detail"),
    path("mail/<int:message_id>/html", sandbox_views.mail_html, name="mail_html"),
    path("mail/<int:message_id>/piece/<int:index>", sandbox_views.mail_attachment, name="mail_attachment"),
]
