"""Fixtures of the biller's tests: a local gateway answering the order status query, and a closed port."""

import pytest

from tests.support.ports import closed_port  # noqa: F401 - a fixture

from .fake_gateway import start_fake_gateway


@pytest.fixture
def gateway(settings):
    """The fake gateway on 127.0.0.1 (tests/billing/fake_gateway.py), where settings.GATEWAY_URL points."""
    fake, server = start_fake_gateway()
    settings.GATEWAY_URL = fake.url
    yield fake
    server.shutdown()
    server.server_close()
