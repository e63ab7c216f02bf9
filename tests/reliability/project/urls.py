from django.urls import path

from tests.reliability.project import views

urlpatterns = [
    path("hello/", views.hello),
    path("slow/", views.slow),
    path("signup/", views.signup),
    path("whoami/", views.whoami),
    path("body-length/", views.body_length),
]
