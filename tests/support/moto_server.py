"""Pytest plugin: a real S3 API (moto in server mode) over HTTP on a free local port, for the test session.

Use it from tests/conftest.py with ``pytest_plugins = ["tests.support.moto_server"]``; then ask for
``moto_endpoint_url`` (the server) or ``s3_bucket`` (a fresh bucket, as app config keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

S3_TEST_REGION = "us-east-1"


@pytest.fixture(scope="session")
def aws_test_credentials() -> Iterator[None]:
    """Dummy credentials and region for every boto3 client in the session: nothing reaches a real account."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", S3_TEST_REGION)
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            env.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint_url(aws_test_credentials: None) -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 and a port the OS picks; stop it when the session ends."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        print(f"\nmoto S3 server listening on http://{host}:{port}")
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint_url: str) -> dict[str, str]:
    """Create a uniquely named bucket on the moto server; return the config keys that point at it."""
    name = f"medsight-test-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint_url, region_name=S3_TEST_REGION)
    client.create_bucket(Bucket=name)
    return {"S3_BUCKET": name, "S3_ENDPOINT_URL": moto_endpoint_url, "S3_REGION": S3_TEST_REGION}
