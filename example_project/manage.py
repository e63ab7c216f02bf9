#!/usr/bin/env python
"""Django's command-line utility for the example project.

The project package is ``example_project`` (so ``channels-server example_project.asgi:channel_layer``
works from the repository root); put the root on ``sys.path`` so this script runs from anywhere.
"""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
