"""URLs of the model side's pages: the project dashboard, its plots and its CSV."""

from django.urls import path

from active_learning import views

app_name = "active_learning"
urlpatterns = [
    path("projects/<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path(
        "projects/<slug:slug>/dashboard/plots/<slug:name>.png",
        views.dashboard_plot,
        name="dashboard_plot",
    ),
    path(
        "projects/<slug:slug>/dashboard/operating-points.csv",
        views.operating_points_csv,
        name="operating_points_csv",
    ),
]
