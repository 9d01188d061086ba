from __future__ import annotations

from django.urls import path

from networks import views

app_name = "networks"
urlpatterns = [
    path("", views.network_index, name="index"),
    path("new/", views.network_create, name="create"),
    path("<int:pk>/", views.network_detail, name="detail"),
    path("<int:pk>/reservations/<str:change>/", views.network_reservation, name="reservation"),
    path("<int:pk>/<str:action>/", views.network_action, name="action"),
]
