"""URLs of the labeling app (project pages; the queue page arrives with its issue)."""

from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("projects/", views.project_list, name="project_list"),
    path("projects/<slug:slug>/import/", views.case_import, name="case_import"),
    path(
        "projects/<slug:slug>/import/<int:job_id>/",
        views.case_import_job,
        name="case_import_job",
    ),
]
