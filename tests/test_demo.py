"""`tasdid demo` as a person runs it: every party answers on its port with demo data; Ctrl-C stops them all."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.slow


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cookie_header(response: httpx.Response) -> dict[str, str]:
    """The cookies a response set, sent back by hand (httpx keeps Secure cookies off plain http; browsers send
    them to loopback)."""
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in response.cookies.jar)}


def test_demo_starts_every_party_with_demo_data_and_stops_on_ctrl_c(tmp_path: Path):
    ports = {name: free_port() for name in ("biller", "gateway", "bank", "smtp")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
        "TASDID_VAR_DIR": str(tmp_path / "var"),
        "TASDID_BILLER_URL": f"http://127.0.0.1:{ports['biller']}",
        "TASDID_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        "TASDID_BANK_URL": f"http://127.0.0.1:{ports['bank']}",
        "TASDID_EMAIL_PORT": str(ports["smtp"]),
        "TASDID_WEB_WORKERS": "1",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "tasdid.cli", "demo"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C" in line:
                break
        assert any("Ctrl-C" in line for line in output), "".join(output)
        assert all(_listening(port) for port in ports.values())
        home = httpx.get(env["TASDID_BILLER_URL"] + "/", timeout=10)
        assert home.status_code == 200 and "Mobile" in home.text and "Internet" in home.text
        phone = httpx.get(env["TASDID_BILLER_URL"] + "/sandbox/phone", timeout=10)
        assert phone.status_code == 200
        # The demo's staff account opens the three admin sites (it belongs to the three parties' staff).
        for party in ("BILLER", "GATEWAY", "BANK"):
            base = env[f"TASDID_{party}_URL"]
            form = httpx.get(base + "/admin/login/", timeout=10)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            signed_in = httpx.post(base + "/admin/login/", headers=_cookie_header(form), timeout=10, data={
                "csrfmiddlewaretoken": token, "username": "admin", "password": "tasdid-demo", "next": "/admin/"})
            assert (signed_in.status_code, signed_in.headers.get("location")) == (302, "/admin/"), party
            index = httpx.get(base + "/admin/", headers=_cookie_header(signed_in), timeout=10)
            assert index.status_code == 200 and "Administration" in index.text, party
        # Demo data: the guide's sample customer reaches her fixed invoice through the real pages.
        biller = env["TASDID_BILLER_URL"]
        form = httpx.get(biller + "/fixe", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        sent = httpx.post(biller + "/fixe", headers=_cookie_header(form), timeout=10, data={
            "csrfmiddlewaretoken": token, "number": "05 22 00 00 01", "payment_code": "4821",
            "email": "khadija@example.ma", "terms": "on",
        })
        assert (sent.status_code, sent.headers.get("location")) == (302, "/factures"), sent.text
        invoices = httpx.get(biller + "/factures", headers=_cookie_header(sent), timeout=10)
        assert "0000111995072017" in invoices.text and "186.00 DH" in invoices.text, invoices.text
        assert "0000111996072017" not in invoices.text  # the internet line's invoice belongs to another line
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
        output.append(rest or "")
    assert demo.returncode == 0, "".join(output)
    time.sleep(0.5)
    assert not any(_listening(port) for port in ports.values()), "a process outlived the demo"
