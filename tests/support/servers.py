"""The parties' web servers on real loopback TCP, in threads of the test process (Django's live server)."""

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread

from tasdid.wsgi import PartyApplication

from .query_counts import CountingApplication


class PartyServerThread(LiveServerThread):
    def __init__(self, party: str, port: int):
        # Each request's SQL statements are counted while a test records them (tests.support.query_counts).
        super().__init__("127.0.0.1",
                         lambda app: CountingApplication(PartyApplication(StaticFilesHandler(app), party), party),
                         port=port)
        self.party = party
        self.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_party_server(party: str, port: int) -> PartyServerThread:
    thread = PartyServerThread(party, port)
    thread.start()
    thread.is_ready.wait(timeout=30)
    if thread.error:
        raise thread.error
    return thread
