"""The dashboard process never loads the face model's libraries: it shows results, workers embed.

One fresh interpreter (this test process may hold torch already) imports every module of dashboard/, then runs
dashboard/app.py and each page of dashboard/views the way Streamlit does (a script run, through AppTest),
signed out: a page's imports all run before its sign-in gate stops it. After each step the child reports which
heavy libraries that step loaded first, and through which import lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from dashboard.navigation import PAGES
from services.config import REPO_ROOT

# The model runtimes (about 900 MB resident for torch alone). OpenCV, Pillow and NumPy are not here: the
# dashboard encodes and decodes pictures itself.
HEAVY = ("torch", "torchvision", "facenet_pytorch", "onnxruntime", "dlib")
MODULES = sorted(
    f"dashboard.{p.stem}" for p in (REPO_ROOT / "dashboard").glob("*.py") if p.stem not in ("__init__", "app")
)
SCRIPTS = ["dashboard/app.py", *(f"dashboard/views/{p.file}" for p in PAGES)]

CHILD = """
import importlib, json, sys, traceback
from pathlib import Path

heavy, modules, scripts = json.loads(sys.argv[1])
seen = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in heavy and name not in seen:
            seen[name] = [f"{Path(f.filename).name}:{f.lineno} {f.line}" for f in traceback.extract_stack()
                          if "/dashboard/" in f.filename or "/services/" in f.filename or "/model/" in f.filename]
        return None

sys.meta_path.insert(0, Watch())
from streamlit.testing.v1 import AppTest

loaded = {}
for name in modules:
    importlib.import_module(name)
    loaded[name] = {h: seen.pop(h) for h in list(seen)}
for script in scripts:
    at = AppTest.from_file(str(Path.cwd() / script), default_timeout=60).run()
    if at.exception:
        raise SystemExit(f"{script}: {[e.value for e in at.exception]}")
    loaded[script] = {h: seen.pop(h) for h in list(seen)}
loaded["sys.modules"] = {h: [] for h in heavy if h in sys.modules}
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    """For each dashboard module and script: the heavy libraries it loaded first, with the import lines."""
    data = tmp_path_factory.mktemp("dashboard-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEREG_")}
    env |= {"FACEREG_DATA_DIR": str(data), "FACEREG_DASHBOARD_USERS_FILE": str(data / "users.json")}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([HEAVY, MODULES, SCRIPTS])],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def test_every_dashboard_module_and_page_is_checked() -> None:
    assert "dashboard.session" in MODULES and "dashboard.jobs" in MODULES
    assert len(SCRIPTS) == 1 + len(list((REPO_ROOT / "dashboard" / "views").glob("[!_]*.py")))


@pytest.mark.parametrize("name", [*MODULES, *SCRIPTS])
def test_no_model_runtime_is_imported(loaded: dict[str, dict[str, list[str]]], name: str) -> None:
    chains = loaded[name]
    assert not chains, "\n".join(f"{name} imports {lib} via:\n  " + "\n  ".join(via) for lib, via in chains.items())


def test_none_is_loaded_at_the_end(loaded: dict[str, dict[str, list[str]]]) -> None:
    """Whatever the import watch missed (a library already found by another name) shows up in sys.modules."""
    assert loaded["sys.modules"] == {}
