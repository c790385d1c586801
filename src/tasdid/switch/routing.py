"""BIN routing, pure: the longest prefix of the card number among the active routes wins."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteEntry:
    bin_prefix: str
    bank_name: str
    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


def route_for(pan: str, routes: Iterable[RouteEntry]) -> RouteEntry | None:
    """The route of the longest prefix of ``pan``; None when no prefix matches (the switch answers 92)."""
    best: RouteEntry | None = None
    for route in routes:
        if pan.startswith(route.bin_prefix) and (best is None or len(route.bin_prefix) > len(best.bin_prefix)):
            best = route
    return best
