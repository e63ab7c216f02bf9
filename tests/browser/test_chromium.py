"""Finding Chromium: a machine without it gets told what to install, never a skipped suite."""

from __future__ import annotations

import os

import pytest

from tests.browser import chromium


def test_chromium_and_its_driver_are_found_on_path(chromium_install: chromium.Chromium):
    assert chromium.find() == chromium_install
    assert os.access(chromium_install.browser, os.X_OK)
    assert os.access(chromium_install.driver, os.X_OK)


def test_without_chromium_or_root_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it: no chromium, no apt-get
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(chromium.ChromiumUnavailable) as missing:
        chromium.find_or_install()
    assert "apt-get install chromium chromium-driver" in str(missing.value)
    assert "needs root and apt-get" in str(missing.value)
