from django.contrib.auth import login
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from tests.reliability.project.consumers import wait_for_gate


def hello(request):
    return HttpResponse("hello", content_type="text/plain")


def slow(request):
    """A response that takes as long as the test wants (it pushes to the gate)."""
    opened = wait_for_gate(request.GET["gate"])
    return HttpResponse("slow done" if opened else "gate timed out", content_type="text/plain")


@csrf_exempt
def signup(request):
    user = User.objects.create_user(request.POST["username"], password=request.POST["password"])
    login(request, user)
    return HttpResponse("signed up", content_type="text/plain")


def whoami(request):
    return HttpResponse(request.user.username, content_type="text/plain")


@csrf_exempt
def body_length(request):
    # The length only: the body itself must never come back, nor reach a log.
    return HttpResponse(str(len(request.body)), content_type="text/plain")
