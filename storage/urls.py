from __future__ import annotations

from django.urls import path

from storage import views

app_name = "storage"
urlpatterns = [
    path("", views.storage_index, name="index"),
    path("loop/new/", views.loop_create, name="loop-create"),
    path("loop/<int:pk>/detach/", views.loop_detach, name="loop-detach"),
    path("loop/<int:pk>/mkfs/", views.loop_mkfs, name="loop-mkfs"),
    path("pools/new/", views.pool_create, name="pool-create"),
    path("pools/<int:pk>/", views.pool_detail, name="pool-detail"),
    path("pools/<int:pk>/destroy/", views.pool_destroy, name="pool-destroy"),
]
