"""Read what the sandbox phones received, as a person reads their phone."""

import re

from tasdid.messaging.models import HandsetMessage

_CODE = re.compile(r"\b(\d{6})\b")


def code_in(text: str) -> str:
    match = _CODE.search(text)
    assert match, f"no 6-digit code in {text!r}"
    return match.group(1)


def last_sms_text(number: str) -> str:
    message = HandsetMessage.objects.filter(number=number).order_by("-received_at", "-pk").first()
    assert message is not None, f"{number} received no SMS"
    return message.text
