"""Django error reports (the debug page, the emails to ADMINS) without card data or codes (PCI DSS 3.3, 3.5).

Django's SafeExceptionReporterFilter hides only what a view marked with ``sensitive_variables`` or
``sensitive_post_parameters``. Card data crosses every party (the payment form, 3-D Secure messages, the
acquirer's dataclasses), so this filter masks by content as well, in every frame's variables, the POST and GET
data, the request's META and the exception's text:

- any run of 13-19 digits (spaces or dashes allowed between them) that passes Luhn, as its masked form;
- the value under any key or variable named like a card number, a CVV, a code or a secret (SENSITIVE_NAMES),
  in mappings, QueryDicts, lists, and in text that spells ``key=value`` / ``'key': 'value'``.

It is active whatever DEBUG says: a debug page shown to a developer must not show a card number either.

The log handlers get CardDataLogFilter: a card number in a logged message or traceback (an exception's text
that quotes it) is written masked.
"""

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.utils.datastructures import MultiValueDict
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .cards import mask_card_numbers

CLEANSED = SafeExceptionReporterFilter.cleansed_substitute

# Names whose value is never shown, compared without case and without "_", "-" or ".".
SENSITIVE_NAMES = frozenset({
    "acctnumber", "pan", "number", "cardnumber", "cvv", "cvc", "cvv2", "cvc2", "otp", "code", "fideliocode",
    "paymentcode", "threedssessiondata", "storekey", "password", "password1", "password2", "hash", "secret",
    "secrets", "key", "keys", "newkey", "newstorekey", "previousstorekey", "storekeys",
})

# A run of digits, possibly grouped by single spaces or dashes as people type card numbers.
# ``key=value``, ``key: value``, ``'key': 'value'``, ``"key": ["value"]`` in a text (reprs, URL-encoded bodies,
# JSON). The key is checked against SENSITIVE_NAMES in the replacement.
_KEY_VALUE = re.compile(
    r"""(?P<q>['"]?)(?P<key>[A-Za-z][A-Za-z0-9_.\-]*)(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|\[[^\]]*\]|[^\s,;&)}\]]+)"""
)
# An element whose name is sensitive, in XML as a value may hold it (the merchant API's <Password>).
_XML_ELEMENT = re.compile(r"<(?P<key>[A-Za-z][A-Za-z0-9_.\-]*)>(?P<value>[^<]*)</(?P=key)>")
_MAX_DEPTH = 6
_MAX_TEXT = 65536  # the report shows 4096 characters of a value; no need to scan megabytes


def is_sensitive_name(name: object) -> bool:
    return isinstance(name, str) and re.sub(r"[_\-.]", "", name).lower() in SENSITIVE_NAMES


def _hide_element(match: re.Match) -> str:
    if not is_sensitive_name(match.group("key")):
        return match.group(0)
    return f"<{match.group('key')}>{CLEANSED}</{match.group('key')}>"


def _hide_value(match: re.Match) -> str:
    if not is_sensitive_name(match.group("key")):
        return match.group(0)
    return f"{match.group('q')}{match.group('key')}{match.group('q')}{match.group('sep')}'{CLEANSED}'"


def cleanse_text(text: str) -> str:
    """A text as an error report may show it: no card number, no value after a sensitive key."""
    return _XML_ELEMENT.sub(_hide_element, _KEY_VALUE.sub(_hide_value, mask_card_numbers(text)))


class Cleansed:
    """A value replaced by its cleansed representation (the report prints reprs)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cleansed) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def cleanse(value: Any, depth: int = 0) -> Any:
    """``value`` with card numbers masked and sensitive keys hidden, containers rebuilt, other objects replaced by
    their cleansed repr when it held something to hide."""
    if depth > _MAX_DEPTH:
        return Cleansed("…")
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        masked = mask_card_numbers(str(abs(value)))
        return Cleansed(mask_card_numbers(str(value))) if masked != str(abs(value)) else value
    if isinstance(value, str):
        return cleanse_text(value[:_MAX_TEXT])
    if isinstance(value, bytes | bytearray):
        text = repr(bytes(value[:_MAX_TEXT]))
        cleansed = cleanse_text(text)
        return value if cleansed == text else Cleansed(cleansed)
    if isinstance(value, MultiValueDict):
        copy = value.copy()  # a QueryDict's copy is mutable
        for key in list(copy):
            values = copy.getlist(key)
            copy.setlist(key, [CLEANSED] * len(values) if is_sensitive_name(key)
                         else [cleanse(v, depth + 1) for v in values])
        return copy
    if isinstance(value, Mapping):
        return {k: CLEANSED if is_sensitive_name(k) else cleanse(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [cleanse(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items) if isinstance(value, tuple) else set(items)
    try:
        text = repr(value)[:_MAX_TEXT]
    except Exception:  # a broken __repr__ must not break the report; Django prints its own error then
        return value
    cleansed = cleanse_text(text)
    return value if cleansed == text else Cleansed(cleansed)


class CardDataReporterFilter(SafeExceptionReporterFilter):
    """settings.DEFAULT_EXCEPTION_REPORTER_FILTER of every party."""

    def is_active(self, request) -> bool:
        return True  # card data is hidden with DEBUG on too

    def get_post_parameters(self, request):
        post = super().get_post_parameters(request)
        return cleanse(post) if post else post

    def get_cleansed_multivaluedict(self, request, multivaluedict):
        return cleanse(super().get_cleansed_multivaluedict(request, multivaluedict))

    def get_safe_request_meta(self, request):
        return {k: cleanse(v) for k, v in super().get_safe_request_meta(request).items()}

    def get_safe_cookies(self, request):
        # Session cookies carry each party's name (tasdid.core.http): hide them like Django's own.
        return {k: CLEANSED if k.endswith("session") else v for k, v in super().get_safe_cookies(request).items()}

    def get_traceback_frame_variables(self, request, tb_frame):
        return [(name, CLEANSED if is_sensitive_name(name) else cleanse(value))
                for name, value in super().get_traceback_frame_variables(request, tb_frame)]


class CardDataExceptionReporter(ExceptionReporter):
    """settings.DEFAULT_EXCEPTION_REPORTER: also the parts of a report the filter does not reach (the exception's
    text, the GET data, the request's address)."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        for key in ("exception_value", "exception_notes", "request_insecure_uri"):
            if isinstance(data.get(key), str):
                data[key] = cleanse_text(data[key])
        if "request_GET_items" in data and self.request is not None:
            data["request_GET_items"] = cleanse(self.request.GET).items()
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = Cleansed(cleanse_text(str(frame["exc_cause"])))
        return data


class CardDataLogFilter(logging.Filter):
    """A log handler's filter (settings.LOGGING): card numbers in a record's message, traceback and stack are
    written masked. Only card numbers: a log line's "code=51" stays readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_card_numbers(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_card_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_card_numbers(record.stack_info)
        return True
