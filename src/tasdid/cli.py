"""The ``tasdid`` command: Django's management commands under the names the README uses.

``tasdid import-bills FILE`` runs the ``import_bills`` command, ``tasdid sandbox sms …`` the ``sandbox_sms``
command, ``tasdid switch`` the centre monétique's ISO 8583 server (``tasdid.switch``'s ``switch`` command),
``tasdid issuer`` the sandbox banks' ISO 8583 issuer host (``tasdid.bank.issuer``), and so on; ``tasdid help``
lists them all.
"""

import os
import sys

# Commands grouped under one word: ``tasdid sandbox cards``, ``tasdid merchant add``.
GROUPS = {"sandbox", "merchant"}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    if args[:1] == ["demo"]:
        from tasdid.demo import main as demo

        sys.exit(demo(args[1:]))
    if args and args[0] in GROUPS and len(args) > 1 and not args[1].startswith("-"):
        args[0:2] = [f"{args[0]}_{args[1]}"]  # "sandbox sms" -> the sandbox_sms command
    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["tasdid", *args])
    except ImproperlyConfigured as exc:
        sys.exit(f"tasdid: configuration: {exc} (see the README, section Configuration)")


if __name__ == "__main__":
    main()
