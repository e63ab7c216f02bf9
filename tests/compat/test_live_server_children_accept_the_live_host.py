"""The processes ``ChannelLiveServerTestCase`` starts accept requests for its ``host``, while
keeping the project's own ``ALLOWED_HOSTS``."""

from __future__ import annotations

import subprocess
import sys


def test_live_server_children_accept_the_live_host():
    from channels.test import ChannelLiveServerTestCase
    from channels.test.liveserver import ALLOWED_HOST_ENV

    class LiveCase(ChannelLiveServerTestCase):
        host = "live.example"
        share_test_databases = False

        def runTest(self):  # noqa: N802 - unittest's name
            pass

    env = LiveCase()._child_environment()
    assert env[ALLOWED_HOST_ENV] == "live.example"
    script = ("from channels.test.liveserver import _setup_django; _setup_django(); "
              "from django.conf import settings; print(settings.ALLOWED_HOSTS)")
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "'live.example'" in result.stdout
    assert "'example.com'" in result.stdout  # the project's own hosts are kept
