"""Read what the sandbox phones received, as a person reads their phone."""

import re
import time

from tasdid.messaging.models import HandsetMessage
from tasdid.messaging.selectors import handset_inbox

_CODE = re.compile(r"\b(\d{6})\b")


def code_in(text: str) -> str:
    match = _CODE.search(text)
    assert match, f"no 6-digit code in {text!r}"
    return match.group(1)


def last_sms_text(number: str) -> str:
    message = HandsetMessage.objects.filter(number=number).order_by("-received_at", "-pk").first()
    assert message is not None, f"{number} received no SMS"
    return message.text


def codes_received(number: str, count: int = 1, *, timeout: float = 30) -> list[str]:
    """The codes the phone received, newest first, once ``count`` SMS have arrived (the task worker delivers them
    in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inbox = list(handset_inbox(number=number))
        if len(inbox) >= count:
            return [code_in(message.text) for message in inbox]
        time.sleep(0.1)
    raise AssertionError(f"{count} SMS expected on {number}")
