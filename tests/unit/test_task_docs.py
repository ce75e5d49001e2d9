"""docs/tasks.md is what `python -m workers.docs` generates from the task API now, and its example program needs
nothing but celery and the standard library."""

from __future__ import annotations

import ast
import sys

from workers import docs
from workers.errors import ERRORS
from workers.messages import API_VERSION, TASKS


def test_the_task_docs_are_current() -> None:
    assert docs.DOC.read_text() == docs.render(), "docs/tasks.md is out of date: run python -m workers.docs"


def test_the_docs_name_the_version_every_task_and_every_error_code() -> None:
    text = docs.DOC.read_text()
    assert text.startswith(f"# The task API, version {API_VERSION}\n")
    assert all(f"### {name}\n" in text and f"`{spec.celery_name}`" in text for name, spec in TASKS.items())
    assert all(f"| `{cls.code}` |" in text for cls in ERRORS)


def test_the_example_imports_only_celery_and_the_standard_library() -> None:
    tree = ast.parse(docs.EXAMPLE.read_text())
    names = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    tops = {name.split(".")[0] for name in names}
    assert tops - set(sys.stdlib_module_names) - {"__future__"} == {"celery"}
