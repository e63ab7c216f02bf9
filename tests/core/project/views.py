import os

from django.http import HttpResponse, JsonResponse


def hello(request):
    return HttpResponse("Hello, world", content_type="text/plain")


def pid(request):
    """Which worker process answered (the two-worker test checks both take requests)."""
    return JsonResponse({"pid": os.getpid()})


def counter(request):
    """A session-backed counter: exercises the database and the session cookie round trip."""
    request.session["count"] = request.session.get("count", 0) + 1
    return JsonResponse({"count": request.session["count"]})
