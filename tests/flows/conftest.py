"""The flow tests' world: the three parties' live servers, the SMTP sink and the task worker, the biller known
to the gateway as a merchant (with its user of the merchant XML API), the sandbox bank's cards, a customer with two
unpaid invoices, and a browser."""

import pytest

from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.demo import seed_biller_api_user
from tasdid.gateway import flow
from tasdid.gateway.demo import seed_demo as seed_gateway
from tests.support.pci import card_data_findings
from tests.support.ports import closed_port  # noqa: F401 - a fixture

from . import journey
from .browser import Browser


@pytest.fixture
def world(parties, smtp_sink, task_worker):
    """Every party up, as ``tasdid demo`` runs them. At the end of each flow, before the database is flushed:
    no card number (nor a CVV written by its name) in any table, the SQLite files or the logs."""
    seed_bank()
    seed_gateway()
    seed_biller_api_user()
    yield parties
    assert card_data_findings(extra_secrets=journey.SECRETS) == []


@pytest.fixture
def customer(world) -> journey.Customer:
    return journey.customer_with_two_invoices()


@pytest.fixture
def person():
    person = Browser()
    yield person
    person.close()


@pytest.fixture
def callbacks(monkeypatch):
    """The callbacks the gateway sends to the biller, as sent, with what came of each (the biller's answer, or
    AMBIGUOUS / NOT_DELIVERED; a spy: the real callback still goes over HTTP)."""
    sent: list[tuple[str, dict[str, str], str]] = []
    send = flow.send_callback

    def spy(url: str, fields: dict[str, str], **kwargs) -> str:
        answer = send(url, fields, **kwargs)
        sent.append((url, dict(fields), answer))
        return answer

    monkeypatch.setattr(flow, "send_callback", spy)
    return sent
