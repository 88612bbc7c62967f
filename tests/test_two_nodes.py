"""Two app nodes, one of everything else: state lives in the shared PostgreSQL, S3 and Redis, never in a node.

Starts two gunicorn processes (gunicorn.conf.py, production settings) on free local ports, sharing a
PostgreSQL database this test creates, migrates with `flask db upgrade` (as a deploy does) and drops,
one bucket on the moto S3 server, and one Redis database (REDIS_URL=redis://127.0.0.1:6379/14, flushed
before and after). A token made on one node works on the other, a logout on one is refused on the
other, rate limits count requests to both, and an upload on one is in the history on the other.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis
import requests

from config import PROJECT_ROOT
from tests.conftest import make_database
from tests.support.images import sample_image
from tests.support.servers import wait_until_answering

pytestmark = pytest.mark.slow

REDIS_URL = "redis://127.0.0.1:6379/14"
ANONYMOUS_LIMIT = 3
ACCOUNT_LOGIN_LIMIT = 4
PASSWORD = "two-nodes-share-1"
START_TIMEOUT_S = 90


@dataclass
class Node:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def api(self, path: str) -> str:
        return f"{self.url}/api/v1{path}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shared_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"needs Redis at {REDIS_URL} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return client


def _wait_ready(node: Node) -> None:
    wait_until_answering(
        node.process, f"{node.url}/ready", node.log, name=f"node {node.name}", timeout_s=START_TIMEOUT_S
    )


def _stop(node: Node) -> None:
    if node.process.poll() is None:
        os.killpg(node.process.pid, signal.SIGTERM)
        try:
            node.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, s3_bucket_for_nodes) -> Iterator[tuple[Node, Node]]:
    shared_redis = _shared_redis()
    shared_redis.flushdb()
    tmp = tmp_path_factory.mktemp("two-nodes")
    database_url, drop_database = make_database("postgresql", tmp)
    env = {
        **os.environ,
        "MEDSIGHT_ENV": "production",
        "JWT_SECRET_KEY": "two-nodes-share-this-secret-0123456789abcdef",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        **s3_bucket_for_nodes,
        "ANONYMOUS_PREDICT": "true",
        "ANONYMOUS_PREDICT_RATE": f"{ANONYMOUS_LIMIT} per minute",
        "AUTH_ACCOUNT_RATE_LIMIT": f"{ACCOUNT_LOGIN_LIMIT} per minute",
        "AUTH_RATE_LIMIT": "1000 per minute",  # every request here comes from one address
        "WEB_CONCURRENCY": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    started: list[Node] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=PROJECT_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        for name in ("a", "b"):
            port = _free_port()
            log = tmp / f"node-{name}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                cwd=PROJECT_ROOT,
                env={**env, "BIND": f"127.0.0.1:{port}", "MEDSIGHT_INSTANCE_PATH": str(tmp / f"instance-{name}")},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, workers included
            )
            started.append(Node(name, f"http://127.0.0.1:{port}", process, log))
        for node in started:
            _wait_ready(node)
        yield started[0], started[1]
    finally:
        for node in started:
            _stop(node)
        drop_database()
        shared_redis.flushdb()


@pytest.fixture(scope="module")
def s3_bucket_for_nodes(moto_endpoint_url) -> dict[str, str]:
    name = f"medsight-nodes-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint_url, region_name="us-east-1").create_bucket(Bucket=name)
    return {
        "S3_BUCKET": name,
        "S3_ENDPOINT_URL": moto_endpoint_url,
        "S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _account(node: Node, email: str) -> dict:
    assert requests.post(node.api("/auth/register"), json={"email": email, "password": PASSWORD}).status_code == 201
    response = requests.post(node.api("/auth/login"), json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_token_made_on_one_node_works_on_the_other(nodes):
    a, b = nodes
    tokens = _account(a, "token-traveller@example.org")
    pat = requests.post(a.api("/tokens"), json={"name": "script"}, headers=_bearer(tokens["access_token"])).json()
    for token in (tokens["access_token"], pat["token"]):
        response = requests.get(b.api("/auth/me"), headers=_bearer(token))
        assert response.status_code == 200 and response.json()["email"] == "token-traveller@example.org"


def test_a_logout_on_one_node_is_refused_on_the_other(nodes):
    a, b = nodes
    access = _account(a, "logout-once@example.org")["access_token"]
    assert requests.get(b.api("/auth/me"), headers=_bearer(access)).status_code == 200
    assert requests.post(a.api("/auth/logout"), headers=_bearer(access)).status_code == 204
    refused = requests.get(b.api("/auth/me"), headers=_bearer(access))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"


def test_a_personal_token_revoked_on_one_node_is_refused_at_once_on_the_other(nodes):
    a, b = nodes
    access = _account(a, "revoked-everywhere@example.org")["access_token"]
    pat = requests.post(a.api("/tokens"), json={"name": "script"}, headers=_bearer(access)).json()
    for _ in range(2):  # read, then answered from node b's token cache
        assert requests.get(b.api("/auth/me"), headers=_bearer(pat["token"])).status_code == 200
    assert requests.delete(a.api(f"/tokens/{pat['id']}"), headers=_bearer(access)).status_code == 204
    refused = requests.get(b.api("/auth/me"), headers=_bearer(pat["token"]))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"


def test_anonymous_predictions_are_limited_across_both_nodes(nodes):
    a, b = nodes
    image = sample_image("chest_xray").read_bytes()
    statuses = []
    for i in range(ANONYMOUS_LIMIT + 2):
        node = (a, b)[i % 2]
        response = requests.post(f"{node.url}/predict", files={"file": ("x.jpeg", image, "image/jpeg")})
        statuses.append(response.status_code)
    assert statuses == [200] * ANONYMOUS_LIMIT + [429, 429], statuses


def test_sign_in_attempts_on_one_account_are_counted_across_both_nodes(nodes):
    a, b = nodes
    _account(a, "guessed-at@example.org")
    statuses = [
        requests.post(
            (a, b)[i % 2].api("/auth/login"), json={"email": "guessed-at@example.org", "password": "no-1"}
        ).status_code
        for i in range(ACCOUNT_LOGIN_LIMIT + 1)
    ]
    # The sign-in in _account counted too; one node alone would have seen at most ACCOUNT_LOGIN_LIMIT.
    assert statuses == [401] * (ACCOUNT_LOGIN_LIMIT - 1) + [429, 429], statuses


def test_an_upload_on_one_node_is_in_the_history_on_the_other(nodes):
    a, b = nodes
    access = _account(a, "uploader@example.org")["access_token"]
    image = sample_image("chest_xray").read_bytes()
    made = requests.post(
        a.api("/predictions"),
        data={"modality": "chest_xray"},
        files={"file": ("x.jpeg", image, "image/jpeg")},
        headers=_bearer(access),
    )
    assert made.status_code == 201, made.text
    history = requests.get(b.api("/predictions"), headers=_bearer(access)).json()
    assert [item["id"] for item in history["items"]] == [made.json()["id"]]
    photo = requests.get(b.api(f"/predictions/{made.json()['id']}/image"), headers=_bearer(access))
    assert photo.status_code == 200 and photo.content == image  # followed to the bucket both nodes share
    heatmap = requests.get(a.api(f"/predictions/{made.json()['id']}/heatmap"), headers=_bearer(access))
    assert heatmap.status_code == 200 and heatmap.content.startswith(b"\x89PNG")
