"""URL map: admin, login/logout, the status page and each app's pages; the 500 handler."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workbench import views

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status, name="status"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("labeling.urls")),
    path("", include("active_learning.urls")),
]

# A lost database answers 503 with a page saying so (workbench/error_pages.py), never a 500.
handler500 = "workbench.error_pages.server_error"
