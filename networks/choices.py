from __future__ import annotations

from django.db import models


class ForwardMode(models.TextChoices):
    NONE = "none", "Isolated (none)"
    NAT = "nat", "NAT"
    ROUTE = "route", "Routed"
