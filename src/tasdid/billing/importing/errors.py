"""What goes wrong in a bill import: each problem names its record and field, in French."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

# Enough to fix a file in one go without drowning its author; the import stops looking after that many.
MAX_PROBLEMS = 20

SEPARATOR = " › "


class Where:
    """A record's place in the file, e.g. ``customers[12] (client 100000123) › bills[0] (2017-06)``.

    Built for every record but only rendered when a problem is reported, so it stays cheap.
    """

    __slots__ = ("index", "label", "name", "parent")

    def __init__(self, parent: "Where | None", name: str, index: int | None = None, label: str | None = None):
        self.parent = parent
        self.name = name
        self.index = index
        self.label = label

    def __str__(self) -> str:
        text = self.name if self.index is None else f"{self.name}[{self.index}]"
        if self.label:
            text = f"{text} ({self.label})"
        return f"{self.parent}{SEPARATOR}{text}" if self.parent is not None else text


@dataclass(frozen=True)
class ImportProblem:
    """One refusal: where (record), which field, and what is wrong."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        place = SEPARATOR.join(part for part in (self.where, self.field) if part)
        return f"{place}: {self.message}" if place else self.message


class BillImportFailed(Exception):
    """The file was refused and nothing was imported; ``problems`` says why (at most MAX_PROBLEMS of them)."""

    def __init__(self, problems: list[ImportProblem], *, truncated: bool = False):
        self.problems = list(problems)
        self.truncated = truncated
        super().__init__("\n".join(str(p) for p in self.problems))

    def headline(self) -> str:
        if self.truncated:
            return _("Import refusé, rien n'a été importé : arrêt après %(count)d erreurs.") % {
                "count": len(self.problems)}
        return _("Import refusé, rien n'a été importé (%(count)d erreur(s)).") % {"count": len(self.problems)}


class TooManyProblems(Exception):
    """Internal: the problem list is full, stop reading."""


class Problems:
    """The problems found so far; raises TooManyProblems once MAX_PROBLEMS are collected."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self.items: list[ImportProblem] = []
        self.limit = limit

    def add(self, where: Where | str | None, field: str, message: str) -> None:
        self.items.append(ImportProblem("" if where is None else str(where), field, message))
        if len(self.items) >= self.limit:
            raise TooManyProblems

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)
