"""One WSGI application per party: ``tasdid.wsgi:biller``, ``tasdid.wsgi:gateway``, ``tasdid.wsgi:bank``,
``tasdid.wsgi:switch`` (the centre monétique's admin)."""

import os

from django.core.wsgi import get_wsgi_application

from tasdid.core.http import PARTY_ENVIRON_KEY

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")


class PartyApplication:
    """Tag every request with the party it is served for (see tasdid.core.http.PartyMiddleware)."""

    def __init__(self, app, party: str):
        self.app = app
        self.party = party

    def __call__(self, environ, start_response):
        environ[PARTY_ENVIRON_KEY] = self.party
        return self.app(environ, start_response)


_django = get_wsgi_application()
biller = PartyApplication(_django, "biller")
gateway = PartyApplication(_django, "gateway")
bank = PartyApplication(_django, "bank")
switch = PartyApplication(_django, "switch")
application = biller
