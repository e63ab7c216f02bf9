from django.urls import path

from example_project.dashboard import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("items.json", views.items_json, name="dashboard-items"),
]
