"""Read a bills file as a stream: the header, then one customer at a time, memory flat whatever the size.

ijson's C backend (yajl2_c) does the parsing when it is installed (``ijson.backend`` says which one runs).
A syntax error is located to its line and column by parsing again up to it (only on that error path).
"""

import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import ijson
from django.utils.translation import gettext as _

from .records import DUPLICATE_MEMBER, TOP_FIELDS

CHUNK = 256 * 1024
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


class FileProblem(Exception):
    """The file cannot be read as JSON at all (missing, unreadable, malformed); the message says where."""


class _Members(dict):
    """A JSON object that remembers member names written twice (JSON allows it, our format does not)."""

    __slots__ = ()

    def __setitem__(self, key, value):
        if key in self:
            dict.setdefault(self, DUPLICATE_MEMBER, []).append(key)
        dict.__setitem__(self, key, value)


class _Counted:
    """A binary stream that counts what the parser has read, for the progress bar and error positions.

    ``slow_from``: from that offset on, hand out one byte per read, so that a parser error happens exactly
    after the byte that causes it.
    """

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None] | None = None, slow_from: int | None = None):
        self.raw = raw
        self.progress = progress
        self.slow_from = slow_from
        self.offset = 0
        self.chunk_start = 0
        self.last_read = 1

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson's probe: bytes or text?
            return self.raw.read(0)
        if self.slow_from is not None:
            size = 1 if self.offset >= self.slow_from else min(size, self.slow_from - self.offset)
        data = self.raw.read(size)
        self.chunk_start = self.offset
        self.offset += len(data)
        self.last_read = len(data)
        if self.progress is not None and data:
            self.progress(len(data))
        return data


_YAJL_MESSAGES = {
    "premature EOF": "fin du fichier inattendue (accolade, crochet ou guillemet non fermé ?)",
    "invalid char in json text": "caractère inattendu",
    "invalid string in json text": "mot inconnu (true, false, null, un nombre ou un texte entre guillemets attendu)",
    "invalid bytes in UTF8 string": "octets invalides en UTF-8",
    "invalid object key (must be a string)": "nom de champ invalide (texte entre guillemets attendu)",
    "trailing garbage": "contenu après la fin du document",
    "after key and value, inside map, I expect ',' or '}'": "« , » ou « } » attendu",
    "after array element, I expect ',' or ']'": "« , » ou « ] » attendu",
    "object key and value must be separated by a colon (':')": "« : » attendu",
    "unallowed token at this point in JSON text": "élément inattendu à cet endroit",
    "Incomplete JSON content": "fin du fichier inattendue (accolade, crochet ou guillemet non fermé ?)",
    "Additional data found": "contenu après la fin du document",
}


def _describe(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for needle, french in _YAJL_MESSAGES.items():
        if needle in first:
            return _(french)
    return _("syntaxe JSON invalide (%(detail)s)") % {"detail": first}


class BillsFile:
    """A bills file: a path, or a seekable binary stream (the demo passes its document in memory)."""

    def __init__(self, source: str | os.PathLike | BinaryIO):
        self.source = source
        self.name = os.fspath(source) if isinstance(source, str | os.PathLike) else getattr(source, "name", "<flux>")

    @contextmanager
    def _open(self):
        if not isinstance(self.source, str | os.PathLike):
            self.source.seek(0)
            yield self.source
            return
        path = Path(self.source)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise FileProblem(_("fichier introuvable : %(path)s") % {"path": self.name}) from None
        except IsADirectoryError:
            raise FileProblem(_("%(path)s est un dossier, pas un fichier") % {"path": self.name}) from None
        except OSError as exc:
            raise FileProblem(_("lecture impossible de %(path)s : %(error)s") % {
                "path": self.name, "error": exc.strerror or exc}) from None
        with stream:
            yield stream

    def size(self) -> int:
        with self._open() as stream:
            stream.seek(0, io.SEEK_END)
            size = stream.tell()
            stream.seek(0)
            return size

    def header(self) -> dict:
        """The members before ``customers`` (scalars only; anything else is kept as a list or a dict marker).

        Raises FileProblem if the document is not an object holding a ``customers`` list.
        """
        with self._open() as raw:
            stream = _Counted(raw)
            events = ijson.parse(stream, buf_size=CHUNK)
            header: dict = _Members()
            try:
                first = next(events, None)
                if first is None or first[1] != "start_map":
                    raise FileProblem(_("le document doit être un objet JSON { … } contenant « customers »"))
                for prefix, event, value in events:
                    if prefix == "" and event == "end_map":
                        raise FileProblem(_("customers : champ obligatoire manquant (la liste des clients)"))
                    if prefix != "" or event != "map_key":
                        continue
                    name = value
                    prefix, event, value = next(events)
                    if name == "customers":
                        if event != "start_array":
                            raise FileProblem(_("customers : liste attendue"))
                        if next(events)[1] == "end_array":  # no customer: the members after it are read here
                            self._members_after_customers(events, header)
                        return dict(header)
                    if event in ("start_map", "start_array"):
                        header[name] = {} if event == "start_map" else []
                        self._skip(events, event)
                    else:
                        header[name] = value
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                raise self._syntax_problem(exc, stream.chunk_start) from None
        raise FileProblem(_("customers : champ obligatoire manquant (la liste des clients)"))

    def _members_after_customers(self, events, header: dict) -> None:
        for prefix, event, value in events:
            if prefix == "" and event == "map_key":
                header[value] = {}
                self._skip_value(events)

    @classmethod
    def _skip_value(cls, events) -> None:
        _prefix, event, _value = next(events)
        if event in ("start_map", "start_array"):
            cls._skip(events, event)

    @staticmethod
    def _skip(events, opened: str) -> None:
        depth = 1
        for _prefix, event, _value in events:
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
                if depth == 0:
                    return

    def customers(self, progress: Callable[[int], None] | None = None) -> Iterator[object]:
        """Each element of ``customers``, one at a time; FileProblem on a syntax error anywhere in the file."""
        last_chunk = None
        with self._open() as raw:
            stream = _Counted(raw, progress)
            try:
                for item in ijson.items(stream, "customers.item", map_type=_Members, buf_size=CHUNK):
                    last_chunk = stream.chunk_start
                    yield item
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                raise self._syntax_problem(exc, stream.chunk_start) from None
        if last_chunk is not None:  # without a customer, header() saw the members after the list
            self._refuse_members_after(self._names_after_customers(max(0, last_chunk - CHUNK)))

    @staticmethod
    def _refuse_members_after(names: list[str]) -> None:
        """The format allows nothing after ``customers`` (docs/import-format.md), wherever it stands."""
        for name in names:
            if name == "customers":
                raise FileProblem(_("customers: champ présent deux fois dans le même objet"))
            if name in TOP_FIELDS:
                raise FileProblem(_("%(name)s: champ attendu avant « customers »") % {"name": name})
            raise FileProblem(_("%(name)s: champ inconnu (champs permis : %(fields)s)") % {
                "name": name, "fields": ", ".join(sorted(TOP_FIELDS))})

    def _names_after_customers(self, start: int) -> list[str]:
        """The names of the top-level members after the ``customers`` list, read from ``start`` (a point before
        the list's last element ends) to the end of the file, which ijson has already found well formed.

        Parsing the whole file's events in Python to see them would cost as much as the import itself; here
        only the tail is read: the list's closing bracket is the first « ] » after which the text is
        ``(, "name": value)* }`` and nothing else, and those names are the members after it."""
        with self._open() as raw:
            raw.seek(start)
            text = raw.read().decode("utf-8", errors="surrogateescape")
        decoder = json.JSONDecoder()
        at = text.find("]")
        while at >= 0:
            names = _members_from(decoder, text, at + 1)
            if names is not None:
                return names
            at = text.find("]", at + 1)
        return []

    def _syntax_problem(self, exc: Exception, chunk_start: int) -> FileProblem:
        offset, line, column = self.locate(chunk_start)
        return FileProblem(_("JSON mal formé ligne %(line)d, colonne %(column)d (octet %(offset)d) : %(what)s") % {
            "line": line, "column": column, "offset": offset, "what": _describe(exc)})

    def locate(self, near: int) -> tuple[int, int, int]:
        """Offset, line and column (1-based, in characters) of the first syntax error, parsing again from the
        start and one byte at a time from ``near`` (the start of the chunk where the first parse failed)."""
        with self._open() as raw:
            stream = _Counted(raw, slow_from=near)
            try:
                for _event in ijson.basic_parse(stream, buf_size=CHUNK):
                    pass
            except (ijson.JSONError, UnicodeDecodeError):
                pass
            offset = stream.offset - 1 if stream.last_read else stream.offset
        with self._open() as raw:
            line, column, done = 1, 1, 0
            while done < offset:
                chunk = raw.read(min(CHUNK, offset - done))
                if not chunk:
                    break
                done += len(chunk)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    line += chunk.count(b"\n")
                    column = 1
                    chunk = chunk[newline + 1:]
                column += len(chunk.translate(None, _UTF8_CONTINUATION))
        return offset, line, column


_SPACE = " \t\n\r"


def _members_from(decoder: json.JSONDecoder, text: str, at: int) -> list[str] | None:
    """If ``text[at:]`` is the end of a JSON object after one of its members — ``(, "name": value)* }`` then
    only white space — the names; else None."""
    names: list[str] = []
    try:
        while True:
            at = _after_space(text, at)
            if text[at] == "}":
                return names if not text[at + 1:].strip(_SPACE) else None
            if text[at] != ",":
                return None
            name, at = decoder.raw_decode(text, _after_space(text, at + 1))
            at = _after_space(text, at)
            if not isinstance(name, str) or text[at] != ":":
                return None
            _value, at = decoder.raw_decode(text, _after_space(text, at + 1))
            names.append(name)
    except (IndexError, ValueError):
        return None


def _after_space(text: str, at: int) -> int:
    while text[at] in _SPACE:
        at += 1
    return at
