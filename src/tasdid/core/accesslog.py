"""The web servers' access log (gunicorn): one line per request, whatever the request's URL holds.

gunicorn writes the path percent-decoded: "/a%0aGET /admin 200" would start a forged second line, and "%1b["
would send terminal escapes to whoever reads the log. Every value is written with its control characters
escaped ("\\x0a"), backslashes doubled so that an escape in the log cannot be mistaken for one typed in the URL.
"""

import re

from gunicorn.glogging import Logger

from .cards import mask_card_numbers

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators that some log viewers break lines at.
_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` on one line: control characters as \\xNN (\\uNNNN for the separators), backslashes doubled."""
    return _UNSAFE.sub(_escaped, text)


# The format of every party's access log; "target" is the path and, when there is one, the query.
ACCESS_LOG_FORMAT = '{party} %(h)s "%(m)s %(target)s" %(s)s %(b)s %(L)ss'


class AccessLogger(Logger):
    """gunicorn's logger, with every access-log value escaped and a ``target`` value (path?query)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        query = environ.get("QUERY_STRING") or ""
        # A card number typed into a search form sent by GET is in the URL: never written whole (PCI DSS 3.3).
        atoms["target"] = mask_card_numbers((environ.get("PATH_INFO") or "") + (f"?{query}" if query else ""))
        for name in ("r", "U", "q", "f"):  # request line, path, query, referer: for a format that writes them
            if isinstance(atoms.get(name), str):
                atoms[name] = mask_card_numbers(atoms[name])
        return {name: escape_controls(value) if isinstance(value, str) else value for name, value in atoms.items()}
