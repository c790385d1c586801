"""`tasdid demo` as a person runs it: every party answers on its port with demo data; a party or the worker
killed with SIGKILL is started again and the demo says so; Ctrl-C stops them all.

One demo run serves every check below (starting it costs most of the test's time)."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tasdid.demo import BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET_AFTER, exit_cause, next_backoff
from tests.support.journey_http import APPROVED_CARDS, pay_bill
from tests.support.ports import free_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cookie_header(response: httpx.Response) -> dict[str, str]:
    """The cookies a response set, sent back by hand (httpx keeps Secure cookies off plain http; browsers send
    them to loopback)."""
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in response.cookies.jar)}


def _children(pid: int) -> dict[str, int]:
    """The demo's child processes by role ("gateway", "worker", …), read from /proc."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            for child in map(int, f.read().split()):
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as c:
                        argv = c.read().decode().split("\0")
                except FileNotFoundError:
                    continue
                # "python -m tasdid.cli worker", "python -m gunicorn tasdid.wsgi:gateway …" (serve execs gunicorn)
                role = argv[3].rpartition(":")[2] if len(argv) > 3 else ""
                role = argv[4] if role == "serve" else role  # not yet replaced by gunicorn
                role = "switch-iso" if argv[2:4] == ["tasdid.cli", "switch"] else role  # its ISO 8583 server
                found[{"smtp-sink": "smtp"}.get(role, role)] = child
    return found


def _switch_journal_0100(env: dict[str, str], *, cwd: Path) -> int:
    """How many 0100 the demo's switch journaled (read by a `tasdid shell` of the demo's own settings)."""
    code = "from tasdid.switch.models import JournalEntry; print(JournalEntry.objects.filter(mti='0100').count())"
    count = 0
    for _ in range(20):  # the switch writes its journal in batches
        done = subprocess.run([sys.executable, "-m", "tasdid.cli", "shell", "--no-imports", "-c", code],
                              env={**env, "TASDID_SANDBOX": "1"},
                              cwd=cwd, capture_output=True, text=True, timeout=60)
        count = int(done.stdout.split()[-1])
        if count >= 2:
            break
        time.sleep(0.5)
    return count


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _check_demo_data(env: dict[str, str]) -> None:
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
    text = invoices.text.replace("\u00a0", " ").replace("&nbsp;", " ")  # amounts keep their unit on their line
    assert "0000111995072017" in text and "186.00 DH" in text, text
    assert "0000111996072017" not in text  # the internet line's invoice belongs to another line


@pytest.mark.slow
def test_demo_serves_every_party_restarts_a_killed_one_and_stops_on_ctrl_c(tmp_path: Path):
    ports = {name: free_port() for name in ("biller", "gateway", "bank", "switch", "switch-iso", "issuer", "smtp")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
        "TASDID_VAR_DIR": str(tmp_path / "var"),
        "TASDID_BILLER_URL": f"http://127.0.0.1:{ports['biller']}",
        "TASDID_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        "TASDID_BANK_URL": f"http://127.0.0.1:{ports['bank']}",
        "TASDID_SWITCH_URL": f"http://127.0.0.1:{ports['switch']}",
        "TASDID_SWITCH_PORT": str(ports["switch-iso"]),
        "TASDID_ISSUER_PORT": str(ports["issuer"]),
        "TASDID_EMAIL_PORT": str(ports["smtp"]),
        "TASDID_WEB_WORKERS": "1",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "tasdid.cli", "demo"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(demo.stdout), daemon=True)
    reader.start()

    def wait_for(predicate, what: str, seconds: float = 60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"{what}:\n{''.join(output)}")

    children: dict[str, int] = {}
    try:
        wait_for(lambda: any("Ctrl-C" in line for line in output), "the demo did not start", 120)
        assert all(_listening(port) for port in ports.values())
        banner = "".join(output)
        for address in (f"127.0.0.1:{ports['switch-iso']}", f"127.0.0.1:{ports['issuer']}",
                        f"{env['TASDID_SWITCH_URL']}/admin/",
                        f"examples/cmi_shop/walkthrough.py --gateway {env['TASDID_GATEWAY_URL']}"):
            assert address in banner, banner
        _check_demo_data(env)
        # A card payment through every process: the gateway's ISO 8583 client → `tasdid switch` → `tasdid issuer`.
        paid = pay_bill(env["TASDID_BILLER_URL"], "12 345 678", "khadija@example.ma", APPROVED_CARDS[0])
        assert (paid.outcome, paid.error) == ("paid", ""), paid
        assert _switch_journal_0100(env, cwd=tmp_path) >= 2  # the 0100 from the gateway and to the issuer host
        # The biller's user of the gateway's merchant XML API (its refunds) is there, with the sandbox password.
        query = (b'<?xml version="1.0" encoding="UTF-8"?><CC5Request><Name>tasdid-biller</Name>'
                 b"<Password>TASDID-DEMO-API-PASSWORD</Password><ClientId>600000001</ClientId>"
                 b"<OrderId>TSDNOSUCHORDER0000</OrderId><Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra></CC5Request>")
        answer = httpx.post(env["TASDID_GATEWAY_URL"] + "/fim/api", content=query, timeout=30).text
        assert "<ERRORCODE>ORDER_UNKNOWN</ERRORCODE>" in answer, answer
        # So is the example shop's (examples/cmi_shop), with the credentials its README gives.
        query = query.replace(b"tasdid-biller", b"boutique-exemple-api").replace(
            b"TASDID-DEMO-API-PASSWORD", b"EXAMPLE-SHOP-API-PASSWORD").replace(b"600000001", b"600000002")
        answer = httpx.post(env["TASDID_GATEWAY_URL"] + "/fim/api", content=query, timeout=30).text
        assert "<ERRORCODE>ORDER_UNKNOWN</ERRORCODE>" in answer, answer

        # SIGKILL the worker's and the gateway's process groups (each child leads its own).
        children = _children(demo.pid)
        assert set(children) == {"biller", "gateway", "bank", "switch", "switch-iso", "issuer", "worker", "smtp"}, \
            children
        for role in ("worker", "gateway"):
            os.killpg(children[role], signal.SIGKILL)
        wait_for(lambda: all(f"« {role} » a redémarré" in "".join(output) for role in ("worker", "gateway")),
                 "the killed processes were not started again")
        text = "".join(output)
        for role in ("worker", "gateway"):
            assert f"le processus « {role} »" in text
        assert text.count("s'est arrêté (tué par le signal SIGKILL) ; redémarrage dans 0.5 s.") == 2, text
        assert "« biller »" not in text and "« bank »" not in text and "« smtp »" not in text  # left alone
        wait_for(lambda: _listening(ports["gateway"]), "the gateway does not answer again")
        again = _children(demo.pid)
        assert again["worker"] != children["worker"] and again["gateway"] != children["gateway"]
        assert {role: again[role] for role in ("biller", "bank", "smtp")} == {
            role: children[role] for role in ("biller", "bank", "smtp")}
        children.update(again)
        page = httpx.get(env["TASDID_GATEWAY_URL"] + "/admin/login/", timeout=10)
        assert page.status_code == 200
        assert _alive(again["worker"]), "".join(output)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
        reader.join(timeout=5)
    assert demo.returncode == 0, "".join(output)
    assert "Arrêt de la démo" in "".join(output)
    time.sleep(0.5)
    assert not any(_listening(port) for port in ports.values()), "a process outlived the demo"
    assert not any(_alive(pid) for pid in children.values()), "a process outlived the demo"


def test_restart_pause_doubles_while_a_child_keeps_failing_and_resets_once_it_stayed_up():
    pauses = [next_backoff(None, 0.1)]
    for _ in range(8):
        pauses.append(next_backoff(pauses[-1], 0.1))
    assert pauses == [BACKOFF_FIRST, 1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]
    assert next_backoff(BACKOFF_MAX, BACKOFF_RESET_AFTER) == BACKOFF_FIRST
    assert next_backoff(BACKOFF_MAX, BACKOFF_RESET_AFTER - 1) == BACKOFF_MAX


def test_exit_cause_names_the_signal_or_the_exit_code():
    assert exit_cause(-signal.SIGKILL) == "tué par le signal SIGKILL"
    assert exit_cause(3) == "code de sortie 3"
