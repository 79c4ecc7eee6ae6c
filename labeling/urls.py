"""URLs of the labeling app: projects, the queue, case search and pages, label quality, imports, exports."""

from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("projects/", views.project_list, name="project_list"),
    path("projects/<slug:slug>/retrain/", views.project_retrain, name="project_retrain"),
    path(
        "projects/<slug:slug>/retrain/progress/",
        views.retrain_progress,
        name="retrain_progress",
    ),
    path("projects/<slug:slug>/queue/", views.queue, name="queue"),
    path("projects/<slug:slug>/queue/submit/", views.queue_submit, name="queue_submit"),
    path("projects/<slug:slug>/queue/skip/", views.queue_skip, name="queue_skip"),
    path("projects/<slug:slug>/queue/undo/", views.queue_undo, name="queue_undo"),
    path("projects/<slug:slug>/queue/ping/", views.queue_ping, name="queue_ping"),
    path("projects/<slug:slug>/cases/", views.case_search_page, name="case_search"),
    path("projects/<slug:slug>/cases/<str:key>/", views.case_detail, name="case_detail"),
    path("projects/<slug:slug>/cases/<str:key>/label/", views.case_label, name="case_label"),
    path("projects/<slug:slug>/quality/", views.quality, name="quality"),
    path("projects/<slug:slug>/import/", views.case_import, name="case_import"),
    path(
        "projects/<slug:slug>/import/<int:job_id>/",
        views.case_import_job,
        name="case_import_job",
    ),
    path("projects/<slug:slug>/export/", views.case_export, name="case_export"),
    path(
        "projects/<slug:slug>/export/<int:job_id>/",
        views.case_export_job,
        name="case_export_job",
    ),
    path(
        "projects/<slug:slug>/export/<int:job_id>/files/<str:name>",
        views.case_export_download,
        name="case_export_download",
    ),
]
