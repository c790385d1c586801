"""``tasdid sandbox sms``: the sandbox phone from the command line.

    tasdid sandbox sms --to 0661000001 --json          the SMS that number received, newest first
    tasdid sandbox sms --from 0661000001 --to 1111 --text code    send one to a service's short number
"""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasdid.core.phones import PhoneError, is_short_number, normalize_address
from tasdid.messaging.selectors import handset_inbox
from tasdid.messaging.services import sms_receive

USAGE_ERROR = 2


class Command(BaseCommand):
    help = "Sandbox phone: read the SMS a number received (--to), or send one to a short number (--from … --to …)."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="the number whose SMS to read, or the short number to send to")
        parser.add_argument("--from", dest="sender", help="send an SMS from this number (to the short number --to)")
        parser.add_argument("--text", default="code", help='the text to send (default "code")')
        parser.add_argument("--limit", type=int, default=50, help="how many SMS to show at most (default 50)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print JSON instead of text")

    def handle(self, *args, to: str, sender: str | None, text: str, limit: int, as_json: bool, **options):
        if not settings.SANDBOX:
            raise CommandError("the sandbox phone exists only in sandbox mode (TASDID_SANDBOX=1)",
                               returncode=USAGE_ERROR)
        to_address = self._address(to, "--to")
        if sender is None:
            self._read(to_address, limit=max(1, min(limit, 1000)), as_json=as_json)
        else:
            self._send(self._address(sender, "--from"), to_address, text, as_json=as_json)

    def _address(self, raw: str, option: str) -> str:
        try:
            return normalize_address(raw)
        except PhoneError:
            raise CommandError(f"{option} {raw!r}: not a phone number (e.g. 0661000001, +212661000001 or 1111)",
                               returncode=USAGE_ERROR) from None

    def _read(self, number: str, *, limit: int, as_json: bool) -> None:
        rows = [{"from": m.sender, "to": m.number, "text": m.text, "received_at": m.received_at.isoformat()}
                for m in handset_inbox(number=number, limit=limit)]
        if as_json:
            self.stdout.write(_dumps(rows))
            return
        if not rows:
            self.stdout.write(f"no SMS received by {number}")
        for row in rows:
            self.stdout.write(f"{row['received_at']}  from {row['from']}: {row['text']}")

    def _send(self, sender: str, to: str, text: str, *, as_json: bool) -> None:
        if is_short_number(sender):
            raise CommandError(f"--from {sender!r}: a phone number is needed, not a short number",
                               returncode=USAGE_ERROR)
        if not is_short_number(to):
            raise CommandError(f"--to {to!r}: SMS are sent to a service's short number (3 to 5 digits, e.g. 1111)",
                               returncode=USAGE_ERROR)
        if not text.strip() or len(text) > 1000:
            raise CommandError("--text: between 1 and 1000 characters", returncode=USAGE_ERROR)
        sms = sms_receive(sender=sender, to=to, text=text)
        if as_json:
            self.stdout.write(_dumps({"from": sms.sender, "to": sms.recipient, "text": sms.text,
                                      "sent_at": sms.created_at.isoformat()}))
        else:
            self.stdout.write(f"sent from {sms.sender} to {sms.recipient}: {sms.text}")


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
