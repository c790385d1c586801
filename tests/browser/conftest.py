"""Browser tests: after each one, before its database is flushed, no card data at rest (DESIGN.md §7.6)."""

import pytest

from tests.flows.journey import SECRETS
from tests.support.pci import card_data_findings


@pytest.fixture(autouse=True)
def no_card_data_at_rest(request):
    """At the teardown of every browser test on the live parties, and before the transactional flush: no
    Luhn-valid card number, no CVV written by its name, no sandbox card number (as typed or as printed) in any
    table, decoded session, task payload, SQLite file or log. The sandbox CVVs are three digits that any
    amount or digest may contain: they are looked for by their name, and in the pages by the tests."""
    if "parties" not in request.fixturenames:
        yield
        return
    # Requested from here, the parties (and their transactional database) are torn down after this check.
    request.getfixturevalue("parties")
    yield
    assert card_data_findings(extra_secrets=SECRETS) == []
