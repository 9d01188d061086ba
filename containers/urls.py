from __future__ import annotations

from django.urls import path

from containers import views
from containers.libvirt import views as libvirt_views

app_name = "containers"
urlpatterns = [
    path("", views.container_list, name="list"),
    path("new/", views.container_create, name="create"),
    path("autostart/<slug:slug>/", views.host_autostart, name="autostart"),
    path("<int:pk>/", views.container_detail, name="detail"),
    path("<int:pk>/destroy/", views.container_destroy, name="destroy"),
    path("<int:pk>/config/", views.container_config, name="config"),
    path("<int:pk>/limits/", views.container_limits, name="limits"),
    path("<int:pk>/hooks/", views.container_hooks, name="hooks"),
    path("<int:pk>/mounts/", views.container_mounts, name="mounts"),
    path("hosts/<slug:slug>/mount-roots/", views.host_mount_roots, name="mount-roots"),
    path("hosts/<slug:slug>/lxc-conf/", views.host_lxc_conf, name="lxc-conf"),
    path("<int:pk>/files/", views.container_files, name="files"),
    path("<int:pk>/terminal/", views.container_terminal, name="terminal"),
    path("<int:pk>/terminal/ticket/", views.container_terminal_ticket, name="terminal-ticket"),
    path("<int:pk>/files/result/<int:op_pk>/", views.container_files_result, name="files-result"),
    path("<int:pk>/files/blob/<int:op_pk>/", views.container_file_blob, name="file-blob"),
    # libvirt-LXC domains (before the catch-all action route)
    path("libvirt/new/", libvirt_views.domain_create, name="libvirt-create"),
    path("<int:pk>/domain-xml/", libvirt_views.domain_xml_edit, name="libvirt-xml"),
    path("<int:pk>/domain/<str:action>/", libvirt_views.domain_action, name="libvirt-action"),
    path("<int:pk>/convert/", libvirt_views.container_convert, name="convert"),
    path("<int:pk>/<str:action>/", views.container_action, name="action"),
]
