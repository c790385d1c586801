"""``tasdid sandbox sms``: read a number's SMS as JSON, send one to a short number; bad numbers exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasdid.cli import main
from tasdid.messaging.models import HandsetMessage, Sms
from tasdid.messaging.services import sms_send
from tests import factories
from tests.support.sms import code_in
from tests.support.tasks import database_url

TASDID = Path(sys.executable).with_name("tasdid")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_reads_what_a_number_received_as_json(transactional_db, run_tasks, capsys):
    sms_send(sender="1111", to="0661000001", text="premier")
    sms_send(sender="BANQUE", to="+212661000001", text="deuxième")
    sms_send(sender="1111", to="0661000002", text="pas pour lui")
    run_tasks()
    code, out, err = run_cli(capsys, "sandbox", "sms", "--to", "06 61 00 00 01", "--json")
    assert (code, err) == (0, "")
    received = {m.text: m.received_at.isoformat() for m in HandsetMessage.objects.all()}
    assert json.loads(out) == [
        {"from": "BANQUE", "to": "+212661000001", "text": "deuxième", "received_at": received["deuxième"]},
        {"from": "1111", "to": "+212661000001", "text": "premier", "received_at": received["premier"]},
    ]


def test_an_empty_inbox_is_an_empty_json_list(transactional_db, capsys):
    assert run_cli(capsys, "sandbox", "sms", "--to", "0661000009", "--json") == (0, "[]\n", "")


def test_sends_code_to_1111_and_the_code_comes_back(transactional_db, run_tasks, capsys):
    factories.mobile_line(number="+212661000001")
    code, out, err = run_cli(capsys, "sandbox", "sms", "--from", "0661000001", "--to", "1111", "--text", "code")
    assert code == 0
    assert "Error" not in err  # stderr carries the log (the delivery task enqueued), nothing else
    assert out == "sent from +212661000001 to 1111: code\n"
    assert Sms.objects.filter(direction="in", sender="+212661000001", recipient="1111", text="code").count() == 1
    assert run_tasks() == 1
    code, out, _ = run_cli(capsys, "sandbox", "sms", "--to", "0661000001")
    assert code == 0
    assert " from 1111: Votre code fidelio est " in out
    code_in(out)


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "abc"], "CommandError: --to 'abc': not a phone number (e.g. 0661000001, +212661000001 or 1111)"),
    (["--to", "1111", "--from", "x"], "CommandError: --from 'x': not a phone number"),
    (["--to", "0661000002", "--from", "0661000001"],
     "CommandError: --to '+212661000002': SMS are sent to a service's short number"),
    (["--to", "1111", "--from", "2222"], "CommandError: --from '2222': a phone number is needed"),
    (["--to", "1111", "--from", "0661000001", "--text", " "], "CommandError: --text: between 1 and 1000"),
])
def test_bad_numbers_exit_2_with_a_clear_message_and_nothing_sent(transactional_db, capsys, args, message):
    code, out, err = run_cli(capsys, "sandbox", "sms", *args)
    assert code == 2
    assert err.startswith(message)
    assert "Traceback" not in err and out == ""
    assert Sms.objects.count() == 0


def test_outside_sandbox_mode_it_refuses(transactional_db, capsys, settings):
    settings.SANDBOX = False
    code, _, err = run_cli(capsys, "sandbox", "sms", "--to", "0661000001")
    assert code == 2
    assert err == "CommandError: the sandbox phone exists only in sandbox mode (TASDID_SANDBOX=1)\n"


def _tasdid(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
           "DATABASE_URL": database_url(), "TASDID_VAR_DIR": str(tmp_path)}
    return subprocess.run([str(TASDID), "sandbox", "sms", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_the_installed_command_reads_the_database_it_is_given(transactional_db, run_tasks, tmp_path):
    sms_send(sender="1111", to="0661000001", text="bonjour")
    run_tasks()
    result = _tasdid("--to", "+212661000001", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    [message] = json.loads(result.stdout)
    assert (message["from"], message["to"], message["text"]) == ("1111", "+212661000001", "bonjour")


def test_the_installed_command_exits_2_on_a_bad_number_without_traceback(transactional_db, tmp_path):
    result = _tasdid("--to", "n'importe quoi", "--json", tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("CommandError: --to \"n'importe quoi\": not a phone number (e.g. 0661000001, "
                             "+212661000001 or 1111)\n")
    assert result.stdout == ""
