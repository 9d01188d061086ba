from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from console import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="containers:list", permanent=False), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("hosts/", views.host_list, name="host-list"),
    path("hosts/<slug:slug>/", views.host_detail, name="host-detail"),
    path("operations/", views.operation_list, name="operation-list"),
    path("operations/<int:pk>/", views.operation_detail, name="operation-detail"),
    path("operations/<int:pk>/card/", views.operation_card, name="operation-card"),
    path("audit/", views.audit_list, name="audit-list"),
    path("containers/", include("containers.urls")),
    path("storage/", include("storage.urls")),
    path("networks/", include("networks.urls")),
]
