from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from storage.models import LoopDevice, Pool


@login_required
def storage_index(request: HttpRequest) -> HttpResponse:
    context = {
        "pools": Pool.objects.select_related("host"),
        "loop_devices": LoopDevice.objects.select_related("host"),
    }
    return render(request, "storage/index.html", context)
