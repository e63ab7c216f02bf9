from django.http import HttpResponse
from django.shortcuts import render


def index(request):
    return render(request, "chat/index.html")


def hello(request):
    """The plain view the benchmarks hit through the whole stack."""
    return HttpResponse("Hello, world", content_type="text/plain")
