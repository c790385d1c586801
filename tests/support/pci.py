"""Scans for card data at rest (PCI DSS 3.3/3.5, DESIGN.md §7.6): every row of every table (sessions
decoded, task payloads included), the SQLite files themselves, and the log files."""

import json
import re
import subprocess
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection

from tasdid.core.cards import find_card_numbers

# A CVV written next to its name in any form: cvv=123, "cvc": "123", CVV2 123…
# Not inside a longer token: a random session or payment token may well hold « cvc217 » (letters and digits on
# both sides), which is no CVV.
CVV_NEAR_NAME = re.compile(r"(?<![A-Za-z0-9])cv[vc]2?[\"'\s:=]{0,4}\d{3,4}(?![A-Za-z0-9])", re.IGNORECASE)
# Random numbers Python's email package writes into every message: the Message-ID
# (<time.pid.64-bit random@host>) and the MIME boundaries (=============== + up to 19 digits + ==). One in a few
# dozen is a Luhn-valid Visa or MasterCard number; they are the mail's, not a card's.
MAIL_TOKENS = re.compile(r"(?<=<)\d+\.\d+\.\d+(?=@)|(?<====)\d{1,20}(?===)")


def database_text() -> str:
    """All the database's content as one text: every field of every row, decoded sessions too."""
    chunks: list[str] = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f.attname for f in model._meta.concrete_fields]
        for row in model._default_manager.values_list(*fields):
            chunks.append(" ".join("" if v is None else str(v) for v in row))
    for session in Session.objects.all():
        chunks.append(json.dumps(session.get_decoded(), default=str))
    return "\n".join(chunks)


def database_files_text() -> str:
    """The raw bytes of the SQLite database and its WAL, where freed pages may keep old rows."""
    if connection.vendor != "sqlite":
        return ""
    name = Path(connection.settings_dict["NAME"])
    texts = []
    for path in (name, Path(f"{name}-wal")):
        if path.exists():
            texts.append(_read_in_child(path).decode("latin-1"))
    return "\n".join(texts)


def _read_in_child(path: Path) -> bytes:
    """The file's bytes, read by a child process: closing any descriptor of a SQLite file in this process would
    drop SQLite's POSIX locks on it, and another process could then take itself for the last connection and
    delete the WAL under our open connections ("disk I/O error")."""
    reader = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    return subprocess.run([sys.executable, "-c", reader, str(path)], capture_output=True, check=True,
                          timeout=60).stdout


def logs_text() -> str:
    log_dir = Path(settings.LOG_DIR)
    if not log_dir.exists():
        return ""
    return "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log")))


# A run of digits touching a hex letter belongs to a hex token: a digest or a UUID (one in a thousand random
# 64-hex digests holds a Luhn-valid card-scheme number), or, in the SQLite files, where a row's columns lie side by
# side with nothing between them, two such tokens meeting. A card number stored or logged stands apart.
CANDIDATE = re.compile(r"(?<![0-9A-Fa-f])\d{13,19}(?![0-9A-Fa-f])")


def card_numbers_in(text: str) -> list[str]:
    """The card numbers in a text (tasdid.core.cards.find_card_numbers over each CANDIDATE), the random numbers
    of any email in it set aside (MAIL_TOKENS)."""
    return [pan for m in CANDIDATE.finditer(MAIL_TOKENS.sub("-", text)) for pan in find_card_numbers(m.group(0))]


def known_card_numbers() -> tuple[str, ...]:
    """Every card number the suite types: the sandbox bank's cards and its unknown number, plain and spaced."""
    from tasdid.bank import sandbox

    numbers = (*(c.number for c in sandbox.CARDS), sandbox.UNKNOWN_NUMBER)
    return tuple(s for n in numbers for s in (n, " ".join(n[i:i + 4] for i in range(0, len(n), 4))))


def card_data_findings(*, extra_secrets: tuple[str, ...] = ()) -> list[str]:
    """Where card data shows up: Luhn-valid card-scheme numbers, CVVs by name, or given literal secrets.

    In the SQLite files a row's columns lie side by side with nothing between them, so two numbers meet: an
    invoice reference (16 digits) after a column ending in digits makes a 19-digit run that is Luhn-valid one time
    in ten. There the scan looks for every card number the suite types (known_card_numbers) and the given
    secrets literally, which finds a stored card whatever stands around it and never a chance number."""
    findings: list[str] = []
    for where, text in (("database", database_text()), ("database files", database_files_text()),
                        ("logs", logs_text())):
        secrets = extra_secrets
        if where == "database files":
            secrets = (*known_card_numbers(), *extra_secrets)
        else:
            findings += [f"{where}: card number {pan[:6]}…{pan[-4:]}" for pan in card_numbers_in(text)]
        findings += [f"{where}: CVV {m.group(0)[:3]}…" for m in CVV_NEAR_NAME.finditer(text)]
        findings += [f"{where}: secret {s[:4]}…" for s in dict.fromkeys(secrets) if s and s in text]
    return findings
