"""The sandbox phone: send an SMS from any number to a short number, read what a number received."""

from django.shortcuts import render


def phone(request):
    return render(request, "messaging/phone.html")
