from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from example_project import probes

urlpatterns = [
    path("", include("example_project.chat.urls")),
    path("dashboard/", include("example_project.dashboard.urls")),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(extra_context={
        "demo_users": settings.EXAMPLE_DEMO_USERS, "demo_password": settings.DEMO_PASSWORD,
    }), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("hello", probes.hello),
    path("hello/", probes.hello),
    # The example serves its own static files (the admin's, the page script, the bridge) also
    # with DEBUG off, so the production shape runs without a web server in front. A real
    # deployment runs `collectstatic` and lets its web server answer /static/ instead.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
