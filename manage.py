#!/usr/bin/env python
"""Django's manage.py, for habits; the ``tasdid`` command is the same thing with friendlier names."""

from tasdid.cli import main

if __name__ == "__main__":
    main()
