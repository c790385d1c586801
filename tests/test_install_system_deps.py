"""scripts/install-system-deps with fake dpkg and apt-get on PATH: apt runs only when a package is missing, and
a busy package manager is waited for (DPkg::Lock::Timeout, update tried again) instead of failing at once."""

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-system-deps"
TOOLS = ("bash", "env", "id", "sleep", "cat")


def _fake_path(tmp_path: Path, *, installed: set[str], busy_updates: int) -> Path:
    """A PATH holding only a few real tools and fakes of chromium, pdftotext, msgfmt, dpkg and apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    scripts = {
        "sudo": 'exec "$@"',  # when the tests do not run as root
        "dpkg": f'case " {" ".join(sorted(installed))} " in *" $2 "*) exit 0;; *) exit 1;; esac',
        # apt-get logs its arguments; "update" fails as a held lists lock does, the first busy_updates times.
        "apt-get": (f'echo "$*" >> {tmp_path}/apt.log\n'
                    f'if [[ " $* " == *" update "* ]]; then\n'
                    f'  n=$(cat {tmp_path}/updates 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/updates\n'
                    f'  if [ "$n" -lt {busy_updates} ]; then\n'
                    f'    echo "E: Could not get lock /var/lib/apt/lists/lock" >&2; exit 100\n'
                    f'  fi\nfi'),
    }
    scripts.update({name: "exit 0" for name in ("chromium", "pdftotext", "msgfmt") if name in installed})
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "TASDID_APT_RETRY_SECONDS": "0",
           "TASDID_APT_LOCK_TIMEOUT": "120"}
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


ALL = {"chromium", "pdftotext", "msgfmt", "fonts-noto-core", "fonts-dejavu-core", "libharfbuzz-subset0",
       "libpango-1.0-0"}


def test_nothing_missing_runs_no_apt(tmp_path: Path):
    done = _run(tmp_path, _fake_path(tmp_path, installed=ALL, busy_updates=0))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (tmp_path / "apt.log").exists()


def test_a_busy_package_manager_is_waited_for_and_only_the_missing_packages_are_installed(tmp_path: Path):
    installed = ALL - {"pdftotext", "fonts-noto-core"}
    done = _run(tmp_path, _fake_path(tmp_path, installed=installed, busy_updates=2))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("the package manager is busy") == 2
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["-o DPkg::Lock::Timeout=120 update -qq"] * 3 + [
        "-o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends poppler-utils fonts-noto-core"]


def test_a_lock_held_past_the_timeout_fails_with_a_message(tmp_path: Path):
    env_timeout = {"TASDID_APT_LOCK_TIMEOUT": "0"}
    bin_dir = _fake_path(tmp_path, installed=ALL - {"chromium"}, busy_updates=1000)
    done = subprocess.run([shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "TASDID_APT_RETRY_SECONDS": "0", **env_timeout})
    assert done.returncode == 1
    assert "apt-get update still fails after 0s" in done.stderr
    assert "install" not in (tmp_path / "apt.log").read_text()
