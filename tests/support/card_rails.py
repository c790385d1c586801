"""The card rails for real, inside the test process: the issuer host (``tasdid.bank.issuer``) and the switch
(``tasdid.switch.server``), each on its own event loop in a thread, on free 127.0.0.1 ports, the switch's BIN routes
pointing at that issuer host, and the gateway's settings pointing at that switch (``tasdid.gateway.rails``).

Tests that use it start with ``pytest.importorskip("tasdid.switch.server")`` and
``pytest.importorskip("tasdid.bank.issuer")``."""

import asyncio
import threading

BOUND = 30.0  # seconds a start or stop may take before the test fails


class _Loop:
    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(BOUND)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(BOUND)


class CardRails:
    """``start()``: issuer host, routes, switch; ``acquirer_settings(settings)``: the gateway on the rails."""

    ROUTES = (("4", "Banque Atlas"), ("5", "Crédit du Sahel"), ("2", "Crédit du Sahel"), ("6", "Banque Atlas"))

    def __init__(self, *, issuer_timeout: float = 5.0, routes: tuple | None = ROUTES):
        """``routes``: BIN prefixes and banks routed to this issuer host, in place of the switch's; None keeps the
        routes its migration seeds (the sandbox banks' ranges only), each reaching this issuer host as the
        switch's default one."""
        self.issuer_timeout = issuer_timeout
        self.routes = routes
        self._issuer_loop = _Loop("issuer-host")
        self._switch_loop = _Loop("switch")
        self.issuer = None
        self.switch = None

    def start(self) -> "CardRails":
        from tasdid.bank.issuer import IssuerHost
        from tasdid.switch.models import Route
        from tasdid.switch.server import Switch, SwitchConfig

        async def start_issuer():
            host = IssuerHost(host="127.0.0.1", port=0)
            await host.start()
            return host

        self.issuer = self._issuer_loop.call(start_issuer())
        if self.routes is None:
            from tasdid.switch.services import routes_seed

            routes_seed()
        else:
            Route.objects.all().delete()
            for prefix, bank in self.routes:
                Route.objects.create(bin_prefix=prefix, bank_name=bank, issuer_host="127.0.0.1",
                                     issuer_port=self.issuer.port)
        config = SwitchConfig(host="127.0.0.1", port=0, default_issuer=("127.0.0.1", self.issuer.port),
                              issuer_timeout=self.issuer_timeout, echo_interval=60.0, echo_timeout=2.0,
                              reconnect_min=0.05, reconnect_max=0.5, reversal_min=0.1, reversal_max=1.0,
                              journal_interval=0.01, routes_refresh=60.0)

        async def start_switch():
            switch = Switch(config)
            await switch.start()
            return switch

        self.switch = self._switch_loop.call(start_switch())
        return self

    @property
    def switch_port(self) -> int:
        return self.switch.port

    def acquirer_settings(self, settings, *, timeout: float = 10.0) -> None:
        """Point the gateway (its settings, in this process) at this switch through the ISO 8583 client."""
        from tasdid.gateway import rails

        settings.GATEWAY_ACQUIRER = "tasdid.gateway.rails.SwitchAcquirer"
        settings.SWITCH_HOST, settings.SWITCH_PORT, settings.RAILS_TIMEOUT = "127.0.0.1", self.switch_port, timeout
        rails.reset_connection()

    def stop(self) -> None:
        from tasdid.gateway import rails

        rails.reset_connection()
        if self.switch is not None:
            self._switch_loop.call(self.switch.stop())
        self._switch_loop.close()
        if self.issuer is not None:
            self._issuer_loop.call(self.issuer.close())
        self._issuer_loop.close()
