"""A real `tasdid serve` writes one access-log line per request, the URL's control characters escaped."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tasdid.core.accesslog import escape_controls
from tasdid.core.cards import find_card_numbers, luhn_complete, mask_card_numbers
from tests.support.ports import free_port


def _request(port: int, target: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:  # the worker may still boot
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_control_characters_of_a_url_do_not_split_or_colour_the_access_log(tmp_path: Path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "tasdid.settings",
        "TASDID_VAR_DIR": str(tmp_path / "var"),
        "TASDID_LOG_DIR": str(tmp_path / "var" / "log"),
    }
    log = tmp_path / "access.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tasdid.cli", "serve", "biller", "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        forged = b"/x%0a%0dbiller%20127.0.0.1%20%22GET%20/admin/%22%20200%200%200.0s%1b[2J?q=%0a%0d%1bz"
        typed = "+".join(PAN[i:i + 4] for i in range(0, 16, 4)).encode()  # a card number typed in a GET search
        answers = [_request(port, forged), _request(port, b"/robots-absent?a=1"),
                   _request(port, b"/admin/?q=" + typed + b"&ref=0000111995072017&p=" + PAN.encode())]
        assert all(answer.startswith(b"HTTP/1.1 ") for answer in answers), answers
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    lines = log.read_text(errors="replace").splitlines()
    access = [line for line in lines if line.startswith("biller ")]
    # One line per request: the forged "biller … 200" inside the first URL is not a line of its own.
    assert len(access) == 3, lines
    # gunicorn writes a quote of a value as \"; the query is written as it came, still percent-encoded.
    assert access[0].startswith('biller 127.0.0.1 "GET /x\\x0a\\x0dbiller 127.0.0.1 \\"GET /admin/\\" 200 0 0.0s'
                                '\\x1b[2J?q=%0a%0d%1bz" '), access[0]
    assert access[1].startswith('biller 127.0.0.1 "GET /robots-absent?a=1" 404 '), access[1]
    assert not any(ch in line for line in lines for ch in "\x1b\r\x00")
    assert access[2].startswith('biller 127.0.0.1 "GET /admin/?q=400011******0017&ref=0000111995072017'
                                '&p=400011******0017" '), access[2]
    assert not find_card_numbers(log.read_text(errors="replace").replace("+", ""))


PAN = luhn_complete("400011000000001")  # 4000110000000017, a sandbox Visa


def test_card_numbers_are_masked_grouped_or_not_and_other_digit_runs_left_alone():
    grouped = " ".join(PAN[i:i + 4] for i in range(0, 16, 4))
    assert mask_card_numbers(f"q={PAN}") == "q=400011******0017"
    assert mask_card_numbers("q=" + grouped.replace(" ", "+")) == "q=400011******0017"
    assert mask_card_numbers("q=" + grouped.replace(" ", "%20")) == "q=400011******0017"
    assert mask_card_numbers("q=" + grouped.replace(" ", "-")) == "q=400011******0017"
    # Beside other digits (a CVV typed after it, a percent-escaped space before it), grouped by several separators.
    assert mask_card_numbers(f"q={PAN}+123") == "q=400011******0017+123"
    assert mask_card_numbers(f"q=12+{PAN}") == "q=12+400011******0017"
    assert mask_card_numbers(f"q=%20{PAN}%2B") == "q=%20400011******0017%2B"
    assert mask_card_numbers("q=" + grouped.replace(" ", "%2B")) == "q=400011******0017"
    assert mask_card_numbers("q=" + grouped.replace(" ", ".")) == "q=400011******0017"
    # An invoice reference that fails Luhn, a Luhn-invalid run, a phone number: kept.
    assert mask_card_numbers("/r/0000111995072017?n=4000110000000018&t=0661000001") == (
        "/r/0000111995072017?n=4000110000000018&t=0661000001")


def test_escape_controls_keeps_text_and_makes_every_escape_unambiguous():
    assert escape_controls("/factures?n=0522000001") == "/factures?n=0522000001"
    assert escape_controls("/a\nb\r\x1b\x7f\x85\u2028é") == "/a\\x0ab\\x0d\\x1b\\x7f\\x85\\u2028é"
    # A backslash typed in the URL is doubled, so "\x0a" in the log always means an escaped newline.
    assert escape_controls("/a\\x0a") == "/a\\\\x0a"
