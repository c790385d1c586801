"""Hex dumps of the card rails as they run: ``tasdid issuer`` and ``tasdid switch`` as processes on free 127.0.0.1
ports over a throwaway SQLite database, a recording TCP proxy between the gateway's ISO 8583 client
(``tasdid.gateway.rails``, in this process) and the switch, and one of each exchange through it: the sign-on
(0800/0810), an authorization (0100/0110), its capture (0220/0230), a refund of it (0200/0210, processing code
20), a second authorization and its reversal (0400/0410). The frames the proxy saw are written into
docs/iso8583.md between ``<!-- captured: hex dumps -->`` and ``<!-- end of captured -->``.

    .venv/bin/python bench/capture_iso_dumps.py            # rewrite the section of the doc
    .venv/bin/python bench/capture_iso_dumps.py --print    # print it only

The card is a sandbox test number (docs/sandbox-bank.md) with its sample CVV, never a real one.
tests/core/test_iso8583_captured.py checks that every dump of the section decodes to the message type it states
and that the section is what ``render`` makes of its bytes.
"""

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import iso8583

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.rails_bench import free_port, wait_port  # noqa: E402
from tasdid.core import iso8583 as iso  # noqa: E402

DOC = ROOT / "docs" / "iso8583.md"
SECTION = re.compile(r"(<!-- captured: hex dumps -->\n)(?P<body>.*?)(<!-- end of captured -->)", re.S)
TASDID = [sys.executable, "-m", "tasdid.cli"]
TO_SWITCH, FROM_SWITCH = "gateway → switch", "switch → gateway"
PAIRS = (("0100", "0110"), ("0200", "0210"), ("0220", "0230"), ("0400", "0410"), ("0800", "0810"))
NAMES = {
    "0100": "authorization request", "0110": "authorization response",
    "0200": "financial request (refund)", "0210": "financial response",
    "0220": "completion (capture)", "0230": "completion response",
    "0400": "reversal", "0410": "reversal response",
    "0800": "network management (sign-on)", "0810": "network management response",
}


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 to ``target`` that forwards bytes as they come and records each whole frame,
    with its direction, in the order the frames were complete."""

    def __init__(self, target: int):
        self.target = target
        self.frames: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, TO_SWITCH), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, FROM_SWITCH), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        pending = b""
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
                pending += chunk
                while len(pending) >= 2 and len(pending) - 2 >= (length := int.from_bytes(pending[:2], "big")):
                    with self.lock:
                        self.frames.append((direction, pending[:2 + length]))
                    pending = pending[2 + length:]
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def hexdump(data: bytes) -> list[str]:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        lines.append(f"{offset:04x}  {chunk.hex(' '):<47}  |{text}|")
    return lines


def render(frames: list[tuple[str, bytes]]) -> str:
    """The doc's section for ``frames`` (direction, bytes with the length prefix), requests and answers in turn."""
    out = []
    for direction, framed in frames:
        fields, _encoded = iso8583.decode(framed[2:], iso.SPEC)
        mti = fields["t"]
        if mti in dict(PAIRS):
            out.append(f"#### {mti}/{dict(PAIRS)[mti]}\n")
        out.append(f"{mti} {NAMES[mti]}, {direction}, {len(framed)} bytes with the length prefix:\n")
        out.append("```")
        out.extend(hexdump(framed))
        out.append("")
        for key in ["t", "p", "1", *sorted((k for k in fields if k.isdigit() and k != "1"), key=int)]:
            if key in fields:
                label = {"t": "MTI", "p": "bitmap", "1": "DE1"}.get(key, f"DE{key}")
                out.append(f"{label:<7}{iso.SPEC[key]['desc']:<40}{fields[key]!r}")
        out.append("```\n")
    return "\n".join(out)


DUMP = re.compile(r"^(?P<mti>\d{4}) [^,\n]+, (?P<direction>[^,\n]+), (?P<size>\d+) bytes with the length "
                  r"prefix:\n\n```\n(?P<hex>(?:[0-9a-f]{4}  .*\n)+)", re.M)


def parse(section: str) -> list[tuple[str, str, bytes]]:
    """The dumps of a section as (stated MTI, direction, bytes), read back from their hex columns."""
    dumps = []
    for m in DUMP.finditer(section):
        data = bytes.fromhex(" ".join(line[6:53] for line in m["hex"].splitlines()))
        dumps.append((m["mti"], m["direction"], data))
    return dumps


def pick(frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """From what the proxy saw, the first request of each pair (the sign-on for 0800) and its answer."""
    chosen = []
    for request_mti, answer_mti in PAIRS:
        for direction, framed in frames:
            request = iso.decode(framed[2:])
            if direction != TO_SWITCH or request_mti != request.MTI:
                continue
            if request_mti == "0800" and request.network_code != iso.SIGN_ON:
                continue
            answer = next(f for d, f in frames if d == FROM_SWITCH and answer_mti == (a := iso.decode(f[2:])).MTI
                          and iso.match_key(a) == iso.match_key(request))
            chosen += [(direction, framed), (FROM_SWITCH, answer)]
            break
        else:
            raise RuntimeError(f"no {request_mti} went through the proxy")
    return chosen


def exchanges() -> None:
    """One of each exchange through the gateway's client (Django set up, the client pointed at the proxy)."""
    from django.utils import timezone

    from tasdid.bank import sandbox
    from tasdid.core.acquiring import AuthorizationRequest, CardData, RefundRequest, SettlementRequest
    from tasdid.gateway import rails, services

    card = sandbox.card_by_outcome("00", "none")
    month, year = card.expiry.split("/")
    acquirer = rails.SwitchAcquirer()
    if not acquirer.rails.wait_up(30):
        raise RuntimeError("the client could not sign on to the switch")

    def authorize(order_id: str, amount: int) -> tuple[AuthorizationRequest, object]:
        request = AuthorizationRequest(
            card=CardData(pan=card.number, expiry_yymm=year + month, cvv=card.cvv), amount_minor=amount,
            currency="504", merchant_id="600000001", merchant_name="Tasdid Telecom", order_id=order_id,
            stan=services.next_stan(), transmitted_at=timezone.now().replace(microsecond=0))
        result = acquirer.authorize(request)
        if not result.approved:
            raise RuntimeError(f"authorization declined: {result.response_code}")
        return request, result

    def settlement(request: AuthorizationRequest, result) -> SettlementRequest:
        return SettlementRequest(
            original_stan=request.stan, original_transmitted_at=request.transmitted_at,
            amount_minor=request.amount_minor, currency="504", merchant_id=request.merchant_id,
            order_id=request.order_id, stan=services.next_stan(), transmitted_at=timezone.now().replace(microsecond=0),
            rrn=result.rrn, auth_code=result.auth_code)

    paid, paid_result = authorize("INV-2026-000417", 28500)
    captured = acquirer.capture(settlement(paid, paid_result))
    refunded = acquirer.refund(RefundRequest(
        rrn=paid_result.rrn, original_stan=paid.stan, original_transmitted_at=paid.transmitted_at,
        amount_minor=5000, currency="504", merchant_id=paid.merchant_id, order_id="INV-2026-000417-R1",
        stan=services.next_stan(), transmitted_at=timezone.now().replace(microsecond=0),
        merchant_name="Tasdid Telecom"))
    voided_request, voided_result = authorize("INV-2026-000418", 12000)
    voided = acquirer.void(settlement(voided_request, voided_result))
    codes = (captured.response_code, refunded.response_code, voided.response_code)
    if codes != ("00", "00", "00"):
        raise RuntimeError(f"capture, refund, reversal answered {codes}")
    rails.reset_connection()


def capture() -> list[tuple[str, bytes]]:
    work = Path(tempfile.mkdtemp(prefix="iso-dumps-"))
    ports = {"switch": free_port(), "issuer": free_port()}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))},
           "TASDID_SANDBOX": "1", "DATABASE_URL": f"sqlite:///{work / 'dumps.sqlite3'}",
           "TASDID_VAR_DIR": str(work), "TASDID_SWITCH_PORT": str(ports["switch"]),
           "TASDID_ISSUER_PORT": str(ports["issuer"]), "TASDID_SWITCH_HOST": "127.0.0.1",
           "TASDID_ISSUER_HOST": "127.0.0.1", "TASDID_LOG_LEVEL": "ERROR"}
    subprocess.run([*TASDID, "migrate", "--no-input", "-v", "0"], env=env, cwd=work, check=True)
    subprocess.run([*TASDID, "shell", "-c", "from tasdid.bank.demo import seed_demo; seed_demo()"], env=env,
                   cwd=work, check=True)
    processes = []
    proxy = None
    try:
        for name in ("issuer", "switch"):
            log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            processes.append(subprocess.Popen([*TASDID, name], env=env, cwd=work, stdout=log, stderr=log,
                                              start_new_session=True))
            wait_port(ports[name])
        proxy = RecordingProxy(ports["switch"])
        os.environ.update({**env, "TASDID_SWITCH_PORT": str(proxy.port), "DJANGO_SETTINGS_MODULE": "tasdid.settings"})
        import django

        django.setup()
        exchanges()
        with proxy.lock:
            return pick(list(proxy.frames))
    finally:
        if proxy is not None:
            proxy.close()
        for process in processes:
            process.terminate()
            process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the section, leave the doc as it is")
    args = parser.parse_args()
    section = render(capture())
    if args.print:
        print(section)
        return 0
    text = DOC.read_text()
    if not SECTION.search(text):
        print(f"{DOC}: no <!-- captured: hex dumps --> section", file=sys.stderr)
        return 1
    DOC.write_text(SECTION.sub(lambda m: m[1] + section + m[3], text))
    print(f"{DOC}: {section.count('```') // 2} dumps captured on {dt.date.today().isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
