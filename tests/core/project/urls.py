from django.urls import path

from tests.core.project import views

urlpatterns = [
    path("hello/", views.hello),
    path("pid/", views.pid),
    path("counter/", views.counter),
]
