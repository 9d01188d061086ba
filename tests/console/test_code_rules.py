"""Rules checked on the source itself: no shell, no XML built by string formatting."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["console", "containers", "storage", "networks", "bench", "manage.py"]
XML_TAG = re.compile(r"<\s*/?\s*[A-Za-z_][\w.-]*(\s|>|/>)|<\?xml")
FORBIDDEN_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}


def python_files() -> list[Path]:
    files: list[Path] = []
    for entry in SOURCE_DIRS:
        path = ROOT / entry
        files += (
            [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "migrations" not in p.parts)
        )
    return files


def violations(source: str, name: str = "<string>") -> list[str]:
    found = []
    tree = ast.parse(source, name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{name}:{node.lineno}: shell= passed to a call")
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) in FORBIDDEN_CALLS:
                    found.append(f"{name}:{node.lineno}: {func.value.id}.{func.attr} runs a shell")
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "format"
                and isinstance(func.value, ast.Constant)
            ):
                if isinstance(func.value.value, str) and XML_TAG.search(func.value.value):
                    found.append(f"{name}:{node.lineno}: XML built with str.format")
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if XML_TAG.search(text):
                found.append(f"{name}:{node.lineno}: XML built with an f-string")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
            for side in (node.left, node.right):
                if (
                    isinstance(side, ast.Constant)
                    and isinstance(side.value, str)
                    and XML_TAG.search(side.value)
                ):
                    found.append(f"{name}:{node.lineno}: XML built with % or +")
    return found


def test_the_checker_catches_what_it_must():
    bad = (
        "import subprocess, os\n"
        "subprocess.run('ls', shell=True)\n"
        "os.system('ls')\n"
        "x = f'<domain type=\"lxc\"><name>{n}</name></domain>'\n"
        "y = '<network><name>%s</name></network>' % n\n"
        "z = '<interface type=\"{}\"/>'.format(t)\n"
    )
    assert len(violations(bad)) == 5
    assert violations("subprocess.run(['ls'], shell=False)\nx = f'{a} < {b}'\n") == []


def test_no_shell_and_no_xml_by_string_formatting_in_the_project():
    found = []
    for path in python_files():
        found += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert found == []
