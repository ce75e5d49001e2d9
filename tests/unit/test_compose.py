"""docker-compose.yml, checked with `docker-compose config` (no engine needed): every store behind credentials
from the env file scripts/compose_env.py writes, only the dashboard's port published, and no start without
the secrets. Also the Chroma side of it: the token proxy's template and the client sending the token."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import numpy as np
import pytest
import yaml
from chromadb.api.shared_system_client import SharedSystemClient
from pydantic import SecretStr

from services.config import REPO_ROOT, Settings
from services.errors import StorageUnavailable
from services.storage import vector_index
from workers.app import install_conf

SECRETS = ("MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD", "REDIS_PASSWORD", "CHROMA_TOKEN")
STORES = ("mongo", "redis", "chroma", "chroma-proxy")
APP_SERVICES = ("worker", "dashboard", "facereg", "camera")
TEMPLATE = REPO_ROOT / "deploy" / "chroma-proxy.conf.template"


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed; `make test` installs it (scripts/install_system_deps.sh)")
    return exe


def _compose_config(env_file: Path, **shell: str) -> subprocess.CompletedProcess[str]:
    # Variables of the shell win over the env file: keep this machine's out of it.
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "FACEREG_INSTALL_NAME"} | shell
    cmd = [_docker_compose(), "--env-file", str(env_file), "-f", str(REPO_ROOT / "docker-compose.yml"), "config"]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def _compose_env(*args: str) -> subprocess.CompletedProcess[str]:
    script = REPO_ROOT / "scripts" / "compose_env.py"
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _read_env(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env.compose"
    proc = _compose_env("--output", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def secrets_(env_file: Path) -> dict[str, str]:
    return _read_env(env_file)


@pytest.fixture(scope="module")
def config(env_file: Path) -> dict[str, Any]:
    proc = _compose_config(env_file)
    assert proc.returncode == 0, proc.stderr
    parsed = yaml.safe_load(proc.stdout)
    assert isinstance(parsed, dict)
    return parsed


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_env_writes_new_private_secrets_and_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "compose.env"
    assert _compose_env("--output", str(path)).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = _read_env(path)
    assert set(SECRETS) <= set(first)
    assert first["MONGO_ROOT_USER"] == "facereg"
    values = [first[k] for k in SECRETS[1:]]
    assert len(set(values)) == len(values)
    for value in values:
        assert len(value) >= 40
        assert not value.startswith("-")
        assert value.replace("-", "").replace("_", "").isalnum()  # nothing to quote in a URL or a shell

    refused = _compose_env("--output", str(path))
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert _read_env(path) == first

    assert _compose_env("--output", str(path), "--force").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    replaced = _read_env(path)
    assert all(replaced[k] != first[k] for k in SECRETS[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.env"]  # no temporary file left


def test_the_env_file_is_git_ignored() -> None:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(
        ["git", "check-ignore", "-q", ".env.compose"], cwd=REPO_ROOT, capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, ".env.compose must be in .gitignore"


def test_config_accepts_the_file(config: dict[str, Any]) -> None:
    assert set(config["services"]) >= {*STORES, *APP_SERVICES}


@pytest.mark.parametrize("missing", [None, *SECRETS])
def test_config_refuses_without_the_secrets(env_file: Path, tmp_path: Path, missing: str | None) -> None:
    partial = tmp_path / "partial.env"
    lines = env_file.read_text().splitlines() if missing else []
    partial.write_text("\n".join(line for line in lines if not line.startswith(f"{missing}=")) + "\n")
    proc = _compose_config(partial)
    assert proc.returncode != 0
    assert "scripts/compose_env.py" in proc.stderr


def test_mongo_requires_the_root_user(config: dict[str, Any], secrets_: dict[str, str]) -> None:
    mongo = config["services"]["mongo"]
    env = _environment(mongo)
    assert env["MONGO_INITDB_ROOT_USERNAME"] == secrets_["MONGO_ROOT_USER"]
    assert env["MONGO_INITDB_ROOT_PASSWORD"] == secrets_["MONGO_ROOT_PASSWORD"]
    check = " ".join(mongo["healthcheck"]["test"])
    assert "MONGO_INITDB_ROOT_PASSWORD" in check
    assert "--authenticationDatabase admin" in check


def test_redis_requires_the_password(config: dict[str, Any], secrets_: dict[str, str]) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == secrets_["REDIS_PASSWORD"]
    assert _environment(redis)["REDISCLI_AUTH"] == secrets_["REDIS_PASSWORD"]  # the healthcheck's redis-cli


def test_chroma_is_reachable_only_through_the_token_proxy(config: dict[str, Any], secrets_: dict[str, str]) -> None:
    services = config["services"]
    assert config["networks"]["chroma-internal"]["internal"] is True
    assert set(services["chroma"]["networks"]) == {"chroma-internal"}
    on_internal = {name for name, s in services.items() if "chroma-internal" in (s.get("networks") or {})}
    assert on_internal == {"chroma", "chroma-proxy"}

    proxy = services["chroma-proxy"]
    env = _environment(proxy)
    assert env["CHROMA_TOKEN"] == secrets_["CHROMA_TOKEN"]
    assert env["CHROMA_UPSTREAM"] == "chroma:8000"
    mounts = [str(v) for v in proxy["volumes"]]
    assert any(m.startswith(f"{TEMPLATE}:/etc/nginx/templates/") for m in mounts), mounts
    assert "Bearer $$CHROMA_TOKEN" in " ".join(proxy["healthcheck"]["test"])
    text = TEMPLATE.read_text()
    assert '$http_authorization = "Bearer ${CHROMA_TOKEN}"' in text
    assert '$http_x_chroma_token = "${CHROMA_TOKEN}"' in text
    assert "return 401;" in text


def test_the_services_connect_with_credentials(config: dict[str, Any], secrets_: dict[str, str]) -> None:
    services = config["services"]
    users = 0
    for name, service in services.items():
        env = _environment(service)
        if "FACEREG_MONGO_URI" in env:
            mongo = urlsplit(env["FACEREG_MONGO_URI"])
            assert (mongo.username, mongo.password) == (secrets_["MONGO_ROOT_USER"], secrets_["MONGO_ROOT_PASSWORD"])
            assert "authSource=admin" in mongo.query, name
            users += 1
        if "FACEREG_REDIS_URL" in env:
            assert urlsplit(env["FACEREG_REDIS_URL"]).password == secrets_["REDIS_PASSWORD"], name
    assert users == len(APP_SERVICES)
    for name in APP_SERVICES:
        env = _environment(services[name])
        assert env["FACEREG_REDIS_URL"].startswith("redis://"), name
        assert env["FACEREG_CHROMA_HOST"] == "chroma-proxy", name
        assert env["FACEREG_CHROMA_TOKEN"] == secrets_["CHROMA_TOKEN"], name


@pytest.mark.parametrize(("shell", "install"), [({}, "facereg"), ({"FACEREG_INSTALL_NAME": "site-b"}, "site-b")])
def test_the_worker_consumes_its_install_queues(env_file: Path, shell: dict[str, str], install: str) -> None:
    proc = _compose_config(env_file, **shell)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert "-Q" not in services["worker"]["command"]  # no -Q: the app's queues, named after the install
    for name in APP_SERVICES:
        env = _environment(services[name])
        settings = Settings(mongo_uri=env["FACEREG_MONGO_URI"], install_name=env["FACEREG_INSTALL_NAME"])
        assert settings.install == install, name
    assert [q.name for q in install_conf(install)["task_queues"]] == [f"{install}.embed", f"{install}.io"]


def test_only_the_dashboard_publishes_a_port(config: dict[str, Any]) -> None:
    published = []
    for name, service in config["services"].items():
        assert "expose" not in service, name
        assert service.get("network_mode") != "host", name
        published += [(name, port) for port in service.get("ports") or []]
    assert len(published) == 1, published
    name, port = published[0]
    assert name == "dashboard"
    target = port["target"] if isinstance(port, dict) else str(port).rsplit(":", 1)[-1]
    assert int(target) == 8501


# -- The Chroma client sends the token -------------------------------------------------------------------------------


class _FakeChroma(BaseHTTPRequestHandler):
    """Answers the requests chromadb.HttpClient makes when it opens, like Chroma behind the proxy: 401 without
    the token. Records every request's Authorization header."""

    token = ""
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(401, {"error": "401 Authorization Required"})  # what nginx says, more or less
            return
        path = self.path.split("?", 1)[0].removeprefix("/api/v2")
        answers: dict[str, object] = {
            "/auth/identity": {"user_id": "", "tenant": "default_tenant", "databases": ["default_database"]},
            "/tenants/default_tenant": {"name": "default_tenant"},
            "/tenants/default_tenant/databases/default_database": {
                "id": str(uuid.uuid4()),
                "name": "default_database",
                "tenant": "default_tenant",
            },
            "/heartbeat": {"nanosecond heartbeat": time.time_ns()},
        }
        if path in answers:
            self._reply(200, answers[path])
        else:
            self._reply(404, {"error": "NotFound", "message": path})

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def fake_chroma() -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (_FakeChroma,), {"token": "s3cret-t0ken_", "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        # chromadb keeps one client system per host:port, headers included.
        SharedSystemClient.clear_system_cache()


def test_open_client_sends_the_token(fake_chroma: tuple[int, list[tuple[str, str | None]]], tmp_path: Path) -> None:
    port, seen = fake_chroma
    client = vector_index.open_client("127.0.0.1", port, tmp_path, token=SecretStr("s3cret-t0ken_"))
    assert client.heartbeat() > 0
    assert len(seen) >= 3  # identity, tenant, database, heartbeat
    assert {auth for _, auth in seen} == {"Bearer s3cret-t0ken_"}


def test_open_client_without_the_token_is_refused(
    fake_chroma: tuple[int, list[tuple[str, str | None]]], tmp_path: Path
) -> None:
    port, seen = fake_chroma
    with pytest.raises(StorageUnavailable, match=r"cannot be opened.*401 Authorization Required"):
        vector_index.open_client("127.0.0.1", port, tmp_path)
    assert seen
    assert {auth for _, auth in seen} == {None}


# -- The proxy's template with a real nginx and a real Chroma 1.5 server ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, headers: dict[str, str], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urlopen(Request(url, headers=headers), timeout=2):
                return
        except HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        with urlopen(Request(url, headers=headers), timeout=10) as resp:
            return int(resp.status)
    except HTTPError as exc:
        return exc.code


def test_the_proxy_template_lets_only_the_token_through(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    chroma = Path(sys.executable).with_name("chroma")
    if nginx is None or not chroma.exists():
        pytest.skip("needs nginx (apt-get install nginx-light) and the chroma CLI of the chromadb package")
    token = "s3cret-t0ken_"
    chroma_port, proxy_port = _free_port(), _free_port()
    # What the nginx image's envsubst step does with the variables docker-compose.yml gives it.
    conf = TEMPLATE.read_text().replace("${CHROMA_TOKEN}", token)
    conf = conf.replace("${CHROMA_UPSTREAM}", f"127.0.0.1:{chroma_port}")
    conf = conf.replace("listen 8000;", f"listen 127.0.0.1:{proxy_port};")
    assert "${" not in conf
    (tmp_path / "default.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/default.conf; }}\n"
    )
    procs = [
        subprocess.Popen(
            [str(chroma), "run", "--path", str(tmp_path / "chroma"), "--port", str(chroma_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.PIPE),
    ]
    try:
        url = f"http://127.0.0.1:{proxy_port}/api/v2/heartbeat"
        _wait_http(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", {})
        _wait_http(url, {})
        assert _status(url, {}) == 401
        assert _status(url, {"Authorization": "Bearer wrong"}) == 401
        assert _status(url, {"Authorization": f"Bearer {token}x"}) == 401
        assert _status(url, {"X-Chroma-Token": "wrong"}) == 401
        assert _status(url, {"Authorization": f"Bearer {token}"}) == 200
        assert _status(url, {"X-Chroma-Token": token}) == 200
        client = vector_index.open_client("127.0.0.1", proxy_port, tmp_path, token=token)
        index = vector_index.ChromaIndex(client)
        vectors = np.eye(4, 8, dtype=np.float32)
        index.upsert("proxy.check", ["a", "b", "c", "d"], vectors, ["p", "q", "r", "s"])
        assert index.query("proxy.check", vectors[:1], 1)[0][0].face_id == "a"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        SharedSystemClient.clear_system_cache()
