"""Every destructive button in a template asks first: hx-confirm or data-confirm on its form or on
itself, or it is on a page that is itself the confirmation (typed name, password)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "templates"
# Pages that are the confirmation, and saves the user asked for on purpose.
CONFIRMATION_PAGES = {
    "containers/container_destroy.html",  # type the container's name
    "storage/loop_detach.html",  # type the device
    "storage/loop_mkfs.html",  # type the device (and tick "wipe" over data)
    "storage/pool_destroy.html",  # type the pool's name
    "console/user_confirm.html",  # the page asks the question
    "account/account.html",  # two-factor off asks for the password
    "containers/container_config.html",  # "Save this file": the editor's own save
    "containers/domain_xml.html",  # "Save this definition": the editor's own save
}


def test_every_destructive_button_asks_first():
    unguarded = []
    for path in ROOT.rglob("*.html"):
        name = str(path.relative_to(ROOT))
        if name in CONFIRMATION_PAGES:
            continue
        text = path.read_text()
        for form in re.finditer(r"<form\b[^>]*>.*?</form>", text, re.S):
            body = form.group(0)
            for button in re.finditer(r"<button\b[^>]*class=\"[^\"]*\bdanger\b[^>]*>", body):
                tag = form.group(0)[: form.group(0).index(">") + 1]
                if not any(word in tag + button.group(0) for word in ("hx-confirm", "data-confirm")):
                    unguarded.append(f"{name}: {button.group(0)}")
    assert unguarded == []


def test_no_template_comment_spans_lines():
    """Django's {# #} comments end at the line's end: one that spans lines is shown as text (an
    operation card and the network page did show theirs)."""
    broken = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in ROOT.rglob("*.html")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert broken == []
