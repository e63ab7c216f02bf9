from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render

from example_project.dashboard.bindings import ItemBinding
from example_project.dashboard.models import Item


def current_items():
    """Every item as the binding sends it, so the page renders snapshots and events alike."""
    binding = ItemBinding()
    return [{"pk": item.pk, "data": binding.serialize_data(item)} for item in Item.objects.all()]


@login_required
def dashboard(request):
    return render(request, "dashboard/dashboard.html",
                  {"items": current_items(), "section": "dashboard"})


@login_required
def items_json(request):
    """The page reloads this after every reconnection: events sent while it was disconnected
    never reach it."""
    return JsonResponse({"items": current_items()})
