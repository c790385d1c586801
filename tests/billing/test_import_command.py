"""``tasdid import-bills FILE``: its output and exit code, in process and as a real command line."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tasdid.billing.models import Customer, Invoice
from tests.billing.bills_files import EXAMPLE, document, guide_customer, write

TASDID = Path(sys.executable).with_name("tasdid")


def run_command(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_bills", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def _without_timing(text: str) -> str:
    return re.sub(r"en [\d.]+ s \([\d\u202f]+ factures par seconde\)", "en … s (… factures par seconde)", text)


@pytest.mark.django_db
def test_a_good_file_prints_what_was_created_then_what_was_already_there():
    code, out, err = run_command(str(EXAMPLE))
    assert (code, err) == (0, "")
    assert _without_timing(out).splitlines() == [
        "Import terminé en … s (… factures par seconde).",
        "  clients : 2 créé(s), 0 déjà présent(s)",
        "  lignes : 3 créé(s), 0 déjà présent(s)",
        "  factures mensuelles : 3 créé(s), 0 déjà présent(s)",
        "  factures : 4 créé(s), 0 déjà présent(s)",
    ]
    code, out, err = run_command(str(EXAMPLE))
    assert (code, err) == (0, "")
    assert _without_timing(out).splitlines()[1:] == [
        "  clients : 0 créé(s), 2 déjà présent(s)",
        "  lignes : 0 créé(s), 3 déjà présent(s)",
        "  factures mensuelles : 0 créé(s), 3 déjà présent(s)",
        "  factures : 0 créé(s), 4 déjà présent(s)",
    ]
    assert Invoice.objects.count() == 4


@pytest.mark.django_db
def test_a_bad_file_exits_with_1_naming_each_problem_and_writes_nothing(tmp_path):
    bad = guide_customer()
    bad["bills"][0]["invoices"][1].update(amount_ht="82.00", amount_vat="16.40", amount_ttc="99.00")
    bad["bills"][0]["invoices"][1]["lines"][0]["amount_ht"] = "82.00"
    bad["lines"][1]["payment_identifier"] = "12 345"
    code, out, err = run_command(str(write(tmp_path / "bills.json", document(bad))))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "Import refusé, rien n'a été importé (1 erreur(s)).",
        "  customers[0] (client 100000001) › lines[1] (12 345) › payment_identifier: « 12 345 » n'est pas un "
        "identifiant de paiement de 8 chiffres (« xx xxx xxx »)",
    ]
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_no_progress_bar_unless_stderr_is_a_terminal():
    code, _out, err = run_command(str(EXAMPLE))
    assert (code, err) == (0, "")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_a_progress_bar_by_bytes_read_on_a_terminal():
    terminal = _Terminal()
    call_command("import_bills", str(EXAMPLE), stdout=io.StringIO(), stderr=terminal)
    bar = terminal.getvalue()
    size = f"{EXAMPLE.stat().st_size / 1024:.2f}"[:4].rstrip(".")  # tqdm shows three digits: "5.06k"
    assert "Import: 100%" in bar, bar
    assert f"| {size}k/{size}k [" in bar, bar
    terminal = _Terminal()
    call_command("import_bills", str(EXAMPLE), "--no-progress", stdout=io.StringIO(), stderr=terminal)
    assert terminal.getvalue() == ""


# A real command line: its own process, its own SQLite database migrated for it.


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict:
    var = tmp_path_factory.mktemp("cli")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{var / 'cli.sqlite3'}", "TASDID_VAR_DIR": str(var),
           "DJANGO_SETTINGS_MODULE": "tasdid.settings"}
    subprocess.run([TASDID, "migrate", "-v0"], env=env, check=True, timeout=120)
    return env


def tasdid(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TASDID, *args], env=env, capture_output=True, text=True, timeout=120)


def test_command_line_imports_a_file(cli_env):
    done = tasdid(cli_env, "import-bills", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert _without_timing(done.stdout).splitlines()[4] in ("  factures : 4 créé(s), 0 déjà présent(s)",
                                                            "  factures : 0 créé(s), 4 déjà présent(s)")
    assert done.stderr == ""


def test_command_line_names_a_missing_file_without_a_traceback(cli_env, tmp_path):
    done = tasdid(cli_env, "import-bills", str(tmp_path / "absent.json"))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["Import refusé, rien n'a été importé (1 erreur(s)).",
                                        f"  fichier introuvable : {tmp_path / 'absent.json'}"]


def test_command_line_locates_malformed_json_without_a_traceback(cli_env, tmp_path):
    path = write(tmp_path / "bad.json", '{"format": "tasdid-bills", "version": 1, "customers": [\n {"name": tru}\n]}')
    done = tasdid(cli_env, "import-bills", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "Import refusé, rien n'a été importé (1 erreur(s)).",
        "  JSON mal formé ligne 2, colonne 14 (octet 69) : mot inconnu (true, false, null, un nombre ou un texte "
        "entre guillemets attendu)"]


def test_command_line_without_a_file_shows_usage(cli_env):
    done = tasdid(cli_env, "import-bills")
    assert done.returncode == 2
    assert "the following arguments are required: file" in done.stderr


def test_command_line_on_a_database_without_tables_says_so(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "TASDID_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "tasdid.settings"}
    done = tasdid(env, "import-bills", str(EXAMPLE))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "Import refusé, rien n'a été importé : la base de données a répondu « no such table: billing_importbatch » "
        "(base à jour ? « tasdid migrate »)"]
