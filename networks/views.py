from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from networks.models import Network


@require_safe
@login_required
def network_index(request: HttpRequest) -> HttpResponse:
    return render(request, "networks/index.html", {"networks": Network.objects.select_related("host")})
