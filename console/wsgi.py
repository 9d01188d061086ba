from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()

from console import hostwatch  # noqa: E402  (needs Django set up)

# Records the running operations of hosts known dead as failed (console.hostwatch).
hostwatch.start()
