"""The parties' web servers on real loopback TCP, in threads of the test process (Django's live server)."""

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread

from tasdid.wsgi import PartyApplication


class PartyServerThread(LiveServerThread):
    def __init__(self, party: str, port: int):
        super().__init__("127.0.0.1", lambda app: PartyApplication(StaticFilesHandler(app), party), port=port)
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
