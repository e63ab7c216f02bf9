"""Channels 1.1-era urls.py files keep importing the Django names they were written against."""

import subprocess
import sys
import textwrap


def test_legacy_url_import_resolves_after_setup():
    from django.conf.urls import url
    from django.urls import re_path

    assert url is re_path


def test_legacy_urlconf_resolves_a_view_in_a_fresh_process(tmp_path):
    (tmp_path / "oldurls.py").write_text(textwrap.dedent('''
        from django.conf.urls import url
        from django.http import HttpResponse
        urlpatterns = [url(r"^hello$", lambda request: HttpResponse("hi"))]
    '''))
    script = textwrap.dedent('''
        import django
        from django.conf import settings
        settings.configure(INSTALLED_APPS=["channels"], ROOT_URLCONF="oldurls")
        django.setup()
        from django.urls import resolve
        print(resolve("/hello").func(None).content.decode())
    ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hi"


def test_shim_can_be_turned_off(tmp_path):
    script = textwrap.dedent('''
        import django
        from django.conf import settings
        settings.configure(INSTALLED_APPS=["channels"], CHANNELS_LEGACY_DJANGO_NAMES=False)
        django.setup()
        import django.conf.urls
        print(hasattr(django.conf.urls, "url"))
    ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"

