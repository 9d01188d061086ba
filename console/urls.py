from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

import console.account_views as account_views
import console.user_views as user_views
from console import host_views, stream, views

# A query parameter that does not parse (console.query.BadParameter): a 400 saying which and why.
handler400 = "console.views.bad_request"

urlpatterns = [
    path("", views.home, name="home"),
    # The login with the optional one-time code.
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account_views.account, name="account"),
    path("account/password/", account_views.password_change, name="account-password"),
    path("account/totp/start/", account_views.totp_start, name="account-totp-start"),
    path("account/totp/confirm/", account_views.totp_confirm, name="account-totp-confirm"),
    path("account/totp/remove/", account_views.totp_remove, name="account-totp-remove"),
    path("hosts/", views.host_list, name="host-list"),
    # An agent exchanges its one-time enrolment token for its host's credentials (no login).
    path("agent/enrol/", host_views.agent_enrol, name="agent-enrol"),
    path("hosts/<slug:slug>/", views.host_detail, name="host-detail"),
    path("hosts/<slug:slug>/monitor/", views.host_monitor, name="host-monitor"),
    path("hosts/<slug:slug>/edit/", views.host_update, name="host-update"),
    path("hosts/<slug:slug>/agent/", host_views.host_agent, name="host-agent"),
    path("operations/", views.operation_list, name="operation-list"),
    path("operations/<int:pk>/", views.operation_detail, name="operation-detail"),
    path("operations/<int:pk>/card/", views.operation_card, name="operation-card"),
    path("operations/<int:pk>/cancel/", views.operation_cancel, name="operation-cancel"),
    # The page's event stream (server-sent events): what changed, so that its panels refresh.
    path("events/", stream.events, name="events"),
    path("audit/", views.audit_list, name="audit-list"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<int:pk>/", views.team_detail, name="team-detail"),
    path("users/", user_views.user_list, name="user-list"),
    path("users/new/", user_views.user_create, name="user-create"),
    path("users/<int:pk>/", user_views.user_detail, name="user-detail"),
    path("users/<int:pk>/deactivate/", user_views.user_deactivate, name="user-deactivate"),
    path("users/<int:pk>/reactivate/", user_views.user_reactivate, name="user-reactivate"),
    path("users/<int:pk>/reset-password/", user_views.user_reset_password, name="user-reset-password"),
    path("users/<int:pk>/remove-2fa/", user_views.user_remove_2fa, name="user-remove-2fa"),
    # The one-time link of an invitation or a password reset (no login: it is how one gets one).
    path("password/<str:token>/", user_views.set_password, name="user-set-password"),
    path("containers/", include("containers.urls")),
    path("storage/", include("storage.urls")),
    path("networks/", include("networks.urls")),
]
