"""The switch in a thread of its own (its own event loop) on a free loopback port, in front of two fake issuer
hosts: Banque Atlas and Crédit du Sahel, routed by BIN from the database."""


import pytest

from tasdid.switch.models import Route
from tasdid.switch.server import Switch, SwitchConfig

from .fakes import FakeIssuer, LoopThread, wait_until


class RunningSwitch:
    def __init__(self, config: SwitchConfig):
        self.thread = LoopThread("switch")
        self.switch = self.thread.call(self._start(config))
        self.port = self.switch.port

    @staticmethod
    async def _start(config: SwitchConfig) -> Switch:
        switch = Switch(config)
        await switch.start()
        return switch

    def links_up(self) -> bool:
        return bool(self.switch.links) and all(link.up.is_set() for link in self.switch.links.values())

    def wait_links_up(self) -> None:
        wait_until(self.links_up, "every issuer link signed on")

    def link(self, issuer: FakeIssuer):
        return self.switch.links[("127.0.0.1", issuer.port)]

    def stop(self) -> None:
        self.thread.call(self.switch.stop())
        self.thread.close()


def test_config(**overrides) -> SwitchConfig:
    values = dict(host="127.0.0.1", port=0, issuer_timeout=5.0, echo_interval=60.0, echo_timeout=1.0,
                  idle_timeout=60.0, reconnect_min=0.05, reconnect_max=0.2, reversal_min=0.05, reversal_max=0.2,
                  journal_interval=0.01, routes_refresh=60.0)
    values.update(overrides)
    return SwitchConfig(**values)


test_config.__test__ = False  # not a test, a factory


@pytest.fixture
def atlas():
    issuer = FakeIssuer().start()
    yield issuer
    issuer.close()


@pytest.fixture
def sahel():
    issuer = FakeIssuer().start()
    yield issuer
    issuer.close()


@pytest.fixture
def routes(transactional_db, atlas, sahel):
    Route.objects.all().delete()
    for prefix, bank, issuer in (("400011", "Banque Atlas", atlas), ("606101", "Banque Atlas", atlas),
                                 ("522011", "Crédit du Sahel", sahel), ("40", "Crédit du Sahel", sahel)):
        Route.objects.create(bin_prefix=prefix, bank_name=bank, issuer_host="127.0.0.1", issuer_port=issuer.port)


@pytest.fixture
def start_switch(routes):
    """``start_switch(**config)``: a running switch with its issuer links up; stopped after the test."""
    running: list[RunningSwitch] = []

    def start(*, wait: bool = True, **overrides) -> RunningSwitch:
        switch = RunningSwitch(test_config(**overrides))
        running.append(switch)
        if wait:
            switch.wait_links_up()
        return switch

    yield start
    for switch in running:
        if switch.thread.thread.is_alive():
            switch.stop()


@pytest.fixture
def switch(start_switch):
    return start_switch()
