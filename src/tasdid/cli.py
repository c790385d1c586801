"""The ``tasdid`` command: Django's management commands under the names the README uses.

``tasdid import-bills FILE`` runs the ``import_bills`` command, ``tasdid sandbox sms …`` the ``sandbox``
command, and so on; ``tasdid help`` lists them all.
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
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
