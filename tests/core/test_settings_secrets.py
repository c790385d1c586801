"""Outside sandbox mode no default secret is ever used, whatever TASDID_DEBUG says: settings refuse to load.

Each case imports tasdid.settings in a fresh interpreter with only the given environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHOW = "import tasdid.settings as s; print(s.SECRET_KEY); print(s.BILLER_STORE_KEY)"
DEMO_STORE_KEY = "TASDID-DEMO-STORE-KEY"
DEV_SECRET = "tasdid-insecure-development-key-change-me-0123456789"


API_PASSWORD = {"TASDID_BILLER_GATEWAY_API_PASSWORD": "an-api-password-of-our-own"}


def _load(tmp_path: Path, **tasdid_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASDID_", "DATABASE_URL", "DJANGO_"))}
    sandbox = tasdid_env.get("TASDID_SANDBOX") == "1"
    env.update({"TASDID_VAR_DIR": str(tmp_path), **({} if sandbox else API_PASSWORD), **tasdid_env})
    return subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("debug", ["1", "0", ""])
def test_outside_sandbox_a_missing_secret_key_stops_the_start_even_in_debug(tmp_path: Path, debug: str):
    loaded = _load(tmp_path, TASDID_DEBUG=debug, TASDID_BILLER_STORE_KEY="a-store-key-of-our-own")
    assert loaded.returncode != 0 and loaded.stdout == ""
    assert "ImproperlyConfigured: TASDID_SECRET_KEY n'est pas définie : hors du mode bac à sable" in loaded.stderr


@pytest.mark.parametrize("debug", ["1", "0"])
def test_outside_sandbox_a_missing_store_key_stops_the_start_even_in_debug(tmp_path: Path, debug: str):
    loaded = _load(tmp_path, TASDID_DEBUG=debug, TASDID_SECRET_KEY="s" * 50)
    assert loaded.returncode != 0 and DEMO_STORE_KEY not in loaded.stdout
    assert "ImproperlyConfigured: TASDID_BILLER_STORE_KEY n'est pas définie" in loaded.stderr


@pytest.mark.parametrize(("name", "public"), [("TASDID_SECRET_KEY", DEV_SECRET),
                                               ("TASDID_BILLER_STORE_KEY", DEMO_STORE_KEY),
                                               ("TASDID_BILLER_GATEWAY_API_PASSWORD", "TASDID-DEMO-API-PASSWORD")])
def test_outside_sandbox_the_public_sandbox_value_set_by_hand_is_refused(tmp_path: Path, name: str, public: str):
    keys = {"TASDID_SECRET_KEY": "s" * 50, "TASDID_BILLER_STORE_KEY": "a-store-key-of-our-own", name: public}
    loaded = _load(tmp_path, TASDID_DEBUG="1", **keys)
    assert loaded.returncode != 0 and loaded.stdout == ""
    assert f"ImproperlyConfigured: {name} a la valeur publique du bac à sable" in loaded.stderr


def test_outside_sandbox_the_keys_set_in_the_environment_are_used(tmp_path: Path):
    loaded = _load(tmp_path, TASDID_DEBUG="1", TASDID_SECRET_KEY="s" * 50,
                   TASDID_BILLER_STORE_KEY="a-store-key-of-our-own")
    assert (loaded.returncode, loaded.stdout.splitlines()) == (0, ["s" * 50, "a-store-key-of-our-own"]), loaded.stderr


def test_in_sandbox_mode_the_public_keys_stand_in_for_missing_ones(tmp_path: Path):
    loaded = _load(tmp_path, TASDID_SANDBOX="1")
    assert (loaded.returncode, loaded.stdout.splitlines()) == (0, [DEV_SECRET, DEMO_STORE_KEY]), loaded.stderr
    chosen = _load(tmp_path, TASDID_SANDBOX="1", TASDID_SECRET_KEY="s" * 50, TASDID_BILLER_STORE_KEY="own-key-1")
    assert chosen.stdout.splitlines() == ["s" * 50, "own-key-1"], chosen.stderr


@pytest.mark.parametrize("debug", ["1", "0"])
def test_outside_sandbox_a_missing_gateway_api_password_stops_the_start(tmp_path: Path, debug: str):
    loaded = _load(tmp_path, TASDID_DEBUG=debug, TASDID_SECRET_KEY="s" * 50,
                   TASDID_BILLER_STORE_KEY="a-store-key-of-our-own", TASDID_BILLER_GATEWAY_API_PASSWORD="")
    assert loaded.returncode != 0 and loaded.stdout == ""
    assert "ImproperlyConfigured: TASDID_BILLER_GATEWAY_API_PASSWORD n'est pas définie" in loaded.stderr
