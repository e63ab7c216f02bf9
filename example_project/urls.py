from django.contrib.auth import views as auth_views
from django.urls import path

from example_project.chat import views

urlpatterns = [
    path("", views.index, name="index"),
    path("hello", views.hello),
    path("hello/", views.hello),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
