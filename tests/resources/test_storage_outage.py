"""A stalled S3 holds an upload no longer than the README promises (10 s), and nothing is recorded."""

from __future__ import annotations

import io
import socket
import time

from tests.resources.helpers import assert_error
from tests.support.images import sample_image

PROMISED_SECONDS = 10


def test_an_upload_to_a_stalled_s3_is_a_503_within_the_promised_time(build_app, aws_test_credentials):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel accepts connections; nobody ever answers
        app = build_app(
            S3_BUCKET="medsight-stalled",
            S3_ENDPOINT_URL=f"http://127.0.0.1:{listener.getsockname()[1]}",
            S3_REGION="us-east-1",
        )
        client = app.test_client()
        client.post("/api/v1/auth/register", json={"email": "s@example.org", "password": "stalled-pass-42"})
        token = client.post("/api/v1/auth/login", json={"email": "s@example.org", "password": "stalled-pass-42"})
        headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
        started = time.monotonic()
        response = client.post(
            "/api/v1/predictions",
            data={"modality": "skin_lesion", "file": (io.BytesIO(sample_image("skin_lesion").read_bytes()), "a.jpg")},
            headers=headers,
            content_type="multipart/form-data",
        )
        took = time.monotonic() - started
    assert_error(response, 503, "storage_unavailable")
    print(f"upload against a stalled S3 answered in {took:.1f} s")
    assert took < PROMISED_SECONDS, took
    assert client.get("/api/v1/predictions", headers=headers).get_json()["total"] == 0
