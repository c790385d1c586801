"""docs/iso8583.md says what the code does: its generated sections (elements by message type, response codes,
hex dumps of each pair) are exactly what this module renders from the code.

    .venv/bin/python -m tests.core.test_iso8583_doc --write    # regenerate the sections in place
"""

import dataclasses
import re
import sys
from pathlib import Path

import iso8583
import pytest

from tasdid.core import iso8583 as iso
from tasdid.core import response_codes as rc
from tests.core.test_iso8583 import PAIRS

DOC = Path(__file__).resolve().parents[2] / "docs" / "iso8583.md"
SECTION = re.compile(r"(<!-- generated: (?P<name>[a-z ]+) -->\n)(?P<body>.*?)(<!-- end of generated -->)", re.S)

NAMES = {
    "0100": "authorization request", "0110": "authorization response",
    "0200": "financial request (refund)", "0210": "financial response",
    "0220": "completion (capture)", "0230": "completion response",
    "0400": "reversal", "0410": "reversal response",
    "0800": "network management (sign-on)", "0810": "network management response",
}


def _element_sort_key(number: str) -> tuple[int, str]:
    head, _, tag = number.partition(".")
    return (int(head), tag)


def render_elements() -> str:
    mtis = sorted(iso.MESSAGES)
    rows: dict[str, dict[str, str]] = {}
    for mti in mtis:
        for f in dataclasses.fields(iso.MESSAGES[mti]):
            number = f.metadata["de"]
            required = f.default is dataclasses.MISSING
            rows.setdefault(number, {"name": f.name})[mti] = "M" if required else "O"
    lines = ["| element | field | " + " | ".join(mtis) + " |", "|---|---|" + "---|" * len(mtis)]
    for number in sorted(rows, key=_element_sort_key):
        row = rows[number]
        cells = " | ".join(row.get(mti, "") for mti in mtis)
        lines.append(f"| DE{number} | `{row['name']}` | {cells} |")
    return "\n".join(lines) + "\n"


def render_codes() -> str:
    lines = ["| code | name | meaning | outcome | on the rails |", "|---|---|---|---|---|"]
    for row in rc.TABLE.values():
        lines.append(f"| `{row.code}` | `{row.name}` | {row.meaning} | {row.outcome.value} | "
                     f"{'yes' if row.on_rails else 'no'} |")
    return "\n".join(lines) + "\n"


def hexdump(data: bytes) -> list[str]:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        lines.append(f"{offset:04x}  {chunk.hex(' '):<47}  |{text}|")
    return lines


def render_dumps() -> str:
    out = []
    for pair, messages in PAIRS.items():
        out.append(f"#### {pair}\n")
        for message in messages:
            framed = iso.encode_frame(message)
            decoded, _encoded = iso8583.decode(framed[2:], iso.SPEC)
            out.append(f"{message.MTI} {NAMES[message.MTI]} (`{type(message).__name__}`), "
                       f"{len(framed)} bytes with the length prefix:\n")
            out.append("```")
            out.extend(hexdump(framed))
            out.append("")
            for key in ["t", "p", "1", *sorted((k for k in decoded if k.isdigit() and k != "1"), key=int)]:
                if key in decoded:
                    label = {"t": "MTI", "p": "bitmap", "1": "DE1"}.get(key, f"DE{key}")
                    out.append(f"{label:<7}{iso.SPEC[key]['desc']:<40}{decoded[key]!r}")
            out.append("```\n")
    return "\n".join(out)


RENDERERS = {"elements": render_elements, "response codes": render_codes, "hex dumps": render_dumps}


def sections(text: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in SECTION.finditer(text)}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_the_generated_sections_of_the_doc_are_up_to_date(name):
    assert sections(DOC.read_text())[name] == RENDERERS[name](), (
        "run: .venv/bin/python -m tests.core.test_iso8583_doc --write")


def write() -> None:
    text = DOC.read_text()
    DOC.write_text(SECTION.sub(lambda m: m[1] + RENDERERS[m["name"]]() + m[4], text))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        for name, render in RENDERERS.items():
            print(f"<!-- generated: {name} -->\n{render()}<!-- end of generated -->\n")
