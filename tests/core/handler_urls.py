"""Views the handler tests drive through AsgiHandler (ROOT_URLCONF for those tests)."""

import json
import os
import tempfile

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from channels.exceptions import ResponseLater

META_KEYS = [
    "REQUEST_METHOD", "QUERY_STRING", "SCRIPT_NAME", "PATH_INFO", "REMOTE_ADDR", "REMOTE_PORT",
    "SERVER_NAME", "SERVER_PORT", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_X_MULTI",
    "HTTP_USER_AGENT", "HTTP_COOKIE",
]


def meta(request):
    return JsonResponse({
        "meta": {key: request.META.get(key) for key in META_KEYS},
        "path": request.path, "path_info": request.path_info, "scheme": request.scheme,
        "GET": {key: request.GET.getlist(key) for key in request.GET},
        "COOKIES": request.COOKIES,
    })


async def async_view(request):
    """Projects on current Django mix in async views; the sync handler runs them to the end."""
    import asyncio

    await asyncio.sleep(0)
    return JsonResponse({"async": True, "path": request.path})


def async_stream(request):
    async def parts():
        for number in range(3):
            yield f"part{number};"

    return StreamingHttpResponse(parts(), content_type="text/plain")


@csrf_exempt
def post(request):
    return JsonResponse({
        "POST": {key: request.POST.getlist(key) for key in request.POST},
        "body_length": len(request.body) if not request.FILES else None,
        "FILES": {
            key: [f.name, f.size, f.read().decode()[:20]] for key, f in request.FILES.items()
        },
    })


@csrf_exempt
def raw_body(request):
    body = request.body
    return JsonResponse(
        {"length": len(body), "head": body[:10].decode(), "tail": body[-10:].decode()}
    )


def stream(request):
    return StreamingHttpResponse(iter([b"one", "two", b"", b"three"]), content_type="text/plain")


def empty_stream(request):
    return StreamingHttpResponse(iter([]), status=204)


def big(request):
    return HttpResponse(b"x" * (1024 * 1024 + 100), content_type="application/octet-stream")


def empty(request):
    return HttpResponse(status=204)


def file(request):
    handle = tempfile.TemporaryFile()
    handle.write(os.urandom(1200 * 1024))
    handle.seek(0)
    return FileResponse(handle)


def cookies(request):
    response = HttpResponse("cookies")
    response.set_cookie("first", "1")
    response.set_cookie("second", "2", httponly=True)
    return response


def later(request):
    raise ResponseLater()


def error(request):
    raise ValueError("view failure")


def form(request):
    if request.method == "POST":
        return HttpResponse("posted " + request.POST.get("field", ""))
    return HttpResponse(get_token(request))


def counter(request):
    request.session["count"] = request.session.get("count", 0) + 1
    return HttpResponse(json.dumps({"count": request.session["count"]}))


urlpatterns = [
    path("meta/", meta),
    path("async/", async_view),
    path("async-stream/", async_stream),
    path("post/", post),
    path("raw/", raw_body),
    path("stream/", stream),
    path("empty-stream/", empty_stream),
    path("big/", big),
    path("empty/", empty),
    path("file/", file),
    path("cookies/", cookies),
    path("later/", later),
    path("error/", error),
    path("form/", form),
    path("counter/", counter),
]
