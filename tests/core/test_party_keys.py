"""Keys per party (DESIGN.md §6, issue 9 item 6): the gateway and a bank hold no key in common, each link's key is
known to its two ends only, and the code of each party uses only the keys that party holds."""

import ast
from pathlib import Path

import pytest

from tasdid.core import keys, threeds

SRC = Path(__file__).resolve().parents[2] / "src" / "tasdid"

# The functions of core that take a key purpose, and the purpose they use when none is given.
KEYED = {"fingerprint": "cards", "cvv_digest": "cards", "code_digest": "codes", "code_matches": "codes"}
LINK_NAMES = {"LINK_SERVER_DIRECTORY": {"gateway", "switch"}, "LINK_DIRECTORY_ACS": {"switch", "bank"}}


def test_the_gateway_and_the_bank_hold_no_key_in_common():
    assert keys.purposes_of("gateway") & keys.purposes_of("bank") == frozenset()
    assert keys.purposes_of("gateway") == {"gateway-cards", "vault", "store-keys", "3ds-gateway-switch"}
    assert keys.purposes_of("bank") == {"cards", "otp", "cavv", "3ds-switch-bank"}
    assert keys.purposes_of("switch") == {"3ds-gateway-switch", "3ds-switch-bank"}
    assert all(len(owners) in (1, 2) for owners in keys.OWNERS.values())
    with pytest.raises(ValueError):
        keys.link_key("gateway", "bank")
    with pytest.raises(ValueError):
        keys.secret_key("threeds")  # the key the gateway and the bank used to share for CReq/CRes: gone


def test_every_key_is_its_own(settings):
    derived = {purpose: keys.secret_key(purpose) for purpose in keys.PURPOSES}
    assert len(set(derived.values())) == len(derived)
    assert set(settings.TASDID_KEYS) == set(keys.PURPOSES)  # each can be set from the environment


def _purposes_used(package: str) -> list[tuple[str, int, str]]:
    """(file, line, purpose) for every key the package's code asks for, literally or by default."""
    used = []
    for path in sorted((SRC / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = (str(path.relative_to(SRC)), getattr(node, "lineno", 0))
            if isinstance(node, ast.Attribute) and node.attr in LINK_NAMES:
                used.extend((*where, p) for p in [keys.LINKS[frozenset(LINK_NAMES[node.attr])]])
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "secret_key":
                arg = node.args[0]
                used.append((*where, arg.value if isinstance(arg, ast.Constant) else "<computed>"))
            elif name == "link_key":
                parties = [a.value if isinstance(a, ast.Constant) else "?" for a in node.args]
                used.append((*where, keys.LINKS.get(frozenset(parties), "<computed>")))
            elif name in KEYED:
                given = [k.value for k in node.keywords if k.arg == "purpose"]
                if given:
                    used.append((*where, given[0].value if isinstance(given[0], ast.Constant) else "<computed>"))
                else:
                    used.append((*where, KEYED[name]))
    return used


@pytest.mark.parametrize("party,package", [("gateway", "gateway"), ("bank", "bank"), ("switch", "switch"),
                                           ("biller", "billing")])
def test_each_party_uses_only_its_own_keys(party, package):
    used = _purposes_used(package)
    assert used, f"{package} asks for no key at all: the scan finds nothing"
    foreign = [u for u in used if u[2] not in keys.purposes_of(party)]
    assert foreign == []


def test_browser_messages_go_under_no_key():
    """CReq and CRes are written and read with no key at all (EMV 3DS's browser flow)."""
    module = ast.parse(Path(threeds.__file__).read_text(encoding="utf-8"))
    for function in (n for n in module.body if isinstance(n, ast.FunctionDef) and "browser_message" in n.name):
        called = {c.func.id for c in ast.walk(function) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        assert not called & {"secret_key", "link_key", "hmac_sign", "hmac_verify", "_signature_matches"}
