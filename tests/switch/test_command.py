"""``tasdid switch`` as a real process: its own database migrated (the sandbox banks' routes seeded, to the
default issuer host), a fake issuer on TASDID_ISSUER_PORT, an acquirer over TCP, then SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tasdid.core import iso8583 as iso
from tests.support.ports import free_port

from .fakes import BOUND, Acquirer, FakeIssuer, authorization, wait_until


def test_tasdid_switch_serves_the_seeded_routes_and_stops_on_sigterm(tmp_path: Path):
    issuer = FakeIssuer().start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
        "TASDID_SANDBOX": "1",
        "TASDID_VAR_DIR": str(tmp_path / "var"),
        "TASDID_SWITCH_PORT": str(port),
        "TASDID_ISSUER_PORT": str(issuer.port),
    }
    command = [sys.executable, "-m", "tasdid.cli"]
    subprocess.run([*command, "migrate", "--no-input", "-v", "0"], env=env, cwd=tmp_path, check=True,
                   timeout=300)
    switch = subprocess.Popen([*command, "switch"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(switch.stdout), daemon=True).start()
    try:
        wait_until(lambda: any(f"ISO 8583 sur 127.0.0.1:{port}" in line for line in output), "the switch listening")
        wait_until(lambda: issuer.network("001"), "the sign-on at the issuer")
        client = Acquirer(port)
        for pan in ("4000110000000017", "6061010000000036", "5220110000000026"):
            assert client.ask(authorization(pan)).response_code == iso.rc.APPROVED
        assert client.ask(authorization("9999990000000010")).response_code == iso.rc.NO_ROUTE
        assert [m.pan for m in issuer.requests("0100")] == ["4000110000000017", "6061010000000036",
                                                             "5220110000000026"]
        client.close()

        switch.send_signal(signal.SIGTERM)
        assert switch.wait(BOUND) == 0, "".join(output)
    finally:
        if switch.poll() is None:
            switch.kill()
        issuer.close()
