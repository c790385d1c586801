"""The customer pages of the biller's site."""

from django.shortcuts import render


def home(request):
    return render(request, "portal/home.html")
