"""The simulation's world: every party's tables in the test database (committed transactions, as in production:
a cross-party call inside a transaction is refused by the gateway), the sandbox bank's cards, the biller known to
the gateway as a merchant, the gateway's ISO 8583 acquirer over the simulated card rails (tests/sim/rails.py: the
switch and the issuer host in process), emails kept in memory."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

from tasdid.bank.demo import seed_demo as seed_bank
from tasdid.gateway.demo import seed_demo as seed_gateway
from tasdid.switch.services import routes_seed

from . import network


@pytest.fixture
def sim_world(transactional_db, settings, mailoutbox):
    settings.GATEWAY_ACQUIRER = "tasdid.gateway.rails.SwitchAcquirer"  # its connection: the simulation's
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The money invariants do not read the receipt's PDF; rendering one per payment tripled the simulation's time.
    # The PDF itself is tested in tests/billing/test_receipt_email.py and tests/portal.
    settings.RECEIPT_EMAIL_PDF = False
    # One connection for every party of this process, as Django's test client does: a party's request served
    # inside another's (a callback) must not close the connection the outer one is using.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # The worker's loop closes connections older than CONN_MAX_AGE (0: every time); one persistent connection
    # here, or each run of the worker would reopen the database file.
    max_age, connection.settings_dict["CONN_MAX_AGE"] = connection.settings_dict["CONN_MAX_AGE"], None
    connection.close_at = None
    seed_bank()
    seed_gateway()
    routes_seed()  # the switch's BIN routes, which its 3-D Secure directory follows (the flush emptied them)
    yield
    if network.CURRENT is not None:
        network.CURRENT.rails.close()
    network.CURRENT = None
    connection.settings_dict["CONN_MAX_AGE"] = max_age
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
