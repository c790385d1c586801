"""No setting's default makes one party load another party's code: a ``TASDID_<PARTY>_…`` variable's default
names a module of that party or of core only (the gateway's acquirer is its own ISO 8583 client)."""

import re
from pathlib import Path

import tasdid.settings

PARTY_OF_PREFIX = {"GATEWAY": {"gateway"}, "BILLER": {"billing", "portal"}, "BANK": {"bank"},
                   "SWITCH": {"switch"}, "ISSUER": {"bank"}, "SMS": {"messaging"}, "SMPP": {"messaging"}}
DEFAULT = re.compile(r'env\("TASDID_(?P<prefix>[A-Z0-9]+)_[A-Z0-9_]*",\s*"tasdid\.(?P<app>[a-z_]+)\.')


def test_a_party_s_setting_never_defaults_to_another_party_s_module():
    source = Path(tasdid.settings.__file__).read_text()
    found = [(m["prefix"], m["app"]) for m in DEFAULT.finditer(source)]
    assert ("GATEWAY", "gateway") in found  # the check reads what it means to: TASDID_GATEWAY_ACQUIRER
    crossing = [(prefix, app) for prefix, app in found
                if prefix in PARTY_OF_PREFIX and app not in PARTY_OF_PREFIX[prefix] | {"core"}]
    assert crossing == []


def test_the_gateway_s_acquirer_is_its_iso_8583_client_by_default():
    from django.conf import settings

    assert settings.GATEWAY_ACQUIRER == "tasdid.gateway.rails.SwitchAcquirer"  # the suite leaves it unset
