"""URLs of the labeling app (project pages; the queue page arrives with its issue)."""

from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("projects/", views.project_list, name="project_list"),
]
