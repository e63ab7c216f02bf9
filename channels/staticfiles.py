"""Static files under ``runserver``: served from the workers through Django's staticfiles app."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.http import Http404, HttpRequest, HttpResponseBase
from django.views import debug

from channels.handler import AsgiHandler, ViewConsumer


class StaticFilesHandler(AsgiHandler):
    """Answers ``STATIC_URL`` paths from the staticfiles finders, everything else via views.

    A missing static file shows Django's technical 404 under DEBUG; otherwise the request falls
    through to the normal views (a project may route something under ``STATIC_URL`` itself).
    """

    def __init__(self) -> None:
        super().__init__()
        self.base_url = urlparse(settings.STATIC_URL or "")

    def should_handle(self, path: str) -> bool:
        # A STATIC_URL with a host is served elsewhere (a CDN), never by us.
        return bool(self.base_url.path) and not self.base_url.netloc and path.startswith(
            self.base_url.path
        )

    def file_path(self, url: str) -> str:
        return url2pathname(url[len(self.base_url.path) :])

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        if self.should_handle(request.path):
            try:
                return serve(request, self.file_path(request.path), insecure=True)
            except Http404 as exc:
                if settings.DEBUG:
                    return debug.technical_404_response(request, exc)
        return super().get_response(request)


class StaticFilesConsumer(ViewConsumer):
    """``ViewConsumer`` that also serves static files (what ``runserver`` routes by default)."""

    handler_class = StaticFilesHandler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
