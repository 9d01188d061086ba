from __future__ import annotations

from django.urls import path

from storage import views

app_name = "storage"
urlpatterns = [path("", views.storage_index, name="index")]
