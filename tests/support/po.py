"""A small reader of gettext catalogues (.po), enough for the tests: entries with their context, plural, flags
and translations; the header entry (msgid "") is kept apart."""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")\s*$')


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.msgctxt, self.msgid, self.msgid_plural)


def _unquote(text: str) -> str:
    return ast.literal_eval(text)


def read(path: Path) -> tuple[Entry | None, list[Entry]]:
    """The header entry and the other entries of the catalogue at ``path``."""
    entries: list[Entry] = []
    current: Entry | None = None
    last: str | None = None

    def close():
        nonlocal current, last
        if current is not None:
            entries.append(current)
        current, last = None, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            close()
            continue
        if line.startswith("#~"):
            if current is None:
                current = Entry(obsolete=True)
            current.obsolete = True
            continue
        if line.startswith("#,"):
            if current is not None and (current.msgid or current.msgstr):
                close()
            current = current or Entry()
            current.flags |= {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            keyword, value = match.group(1), _unquote(match.group(2))
            if keyword in ("msgctxt", "msgid") and current is not None and current.msgstr:
                close()
            current = current or Entry()
            last = keyword
            if keyword == "msgctxt":
                current.msgctxt = value
            elif keyword == "msgid":
                current.msgid = value
            elif keyword == "msgid_plural":
                current.msgid_plural = value
            else:
                index = int(keyword[7:-1]) if "[" in keyword else 0
                current.msgstr[index] = value
            continue
        if line.startswith('"') and current is not None and last:
            value = _unquote(line)
            if last == "msgctxt":
                current.msgctxt = (current.msgctxt or "") + value
            elif last == "msgid":
                current.msgid += value
            elif last == "msgid_plural":
                current.msgid_plural = (current.msgid_plural or "") + value
            else:
                index = int(last[7:-1]) if "[" in last else 0
                current.msgstr[index] = current.msgstr.get(index, "") + value
    close()
    header = next((e for e in entries if e.msgid == "" and e.msgctxt is None), None)
    return header, [e for e in entries if e is not header and not e.obsolete]


def nplurals(header: Entry | None) -> int:
    match = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr.get(0, "") if header else "")
    return int(match.group(1)) if match else 2
