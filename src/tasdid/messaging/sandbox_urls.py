"""Sandbox pages (demo only): the sandbox phone and mailbox."""

from django.urls import path

from . import sandbox_views

app_name = "sandbox"

urlpatterns = [
    path("phone", sandbox_views.phone, name="phone"),
]
