"""Jobs without a broker (the embedded thread pool), with photos and chunks on S3, and from the command line."""

from __future__ import annotations

import boto3

from tests.support.jobs import fixture_images, submit, wait_for_job, zip_of


def _headers(client) -> dict[str, str]:
    credentials = {"email": "batch@example.org", "password": "correct-horse-42"}
    assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
    return {"Authorization": f"Bearer {client.post('/api/v1/auth/login', json=credentials).get_json()['access_token']}"}


def test_the_embedded_pool_scores_a_job_after_the_answer(build_app, installed_modalities):
    app = build_app(JOB_WORKER_THREADS="2", JOB_CHUNK_SIZE="2")
    client = app.test_client()
    headers = _headers(client)
    response = submit(client, headers, zip_of(fixture_images(["breast"])[:5]))
    assert response.status_code == 202 and response.get_json()["status"] in ("queued", "running")
    assert app.extensions["job_queue"].wait_idle(timeout=60)
    job = wait_for_job(client, headers, response.get_json()["id"])
    assert (job["status"], job["total"], job["scored"]) == ("done", 5, 5)


def test_a_job_on_s3_keeps_its_photos_there_and_drops_its_chunks(build_app, s3_bucket, installed_modalities):
    app = build_app(**s3_bucket, JOB_CHUNK_SIZE="2")
    client = app.test_client()
    headers = _headers(client)
    job = submit(client, headers, zip_of(fixture_images(["skin_lesion"])[:3])).get_json()
    assert (job["status"], job["scored"]) == ("done", 3)
    s3 = boto3.client("s3", endpoint_url=s3_bucket["S3_ENDPOINT_URL"], region_name=s3_bucket["S3_REGION"])
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket["S3_BUCKET"]).get("Contents", [])]
    assert len([key for key in keys if key.startswith("photos/")]) == 3
    assert not [key for key in keys if key.startswith("jobs/")]  # chunks go once scored
    image = client.get(f"/api/v1/predictions?job_id={job['id']}", headers=headers).get_json()["items"][0]
    assert client.get(image["image_url"], headers=headers).status_code == 302  # a short-lived S3 link


def test_jobs_submit_on_the_command_line(build_app, tmp_path, installed_modalities):
    app = build_app()
    _headers(app.test_client())
    archive = tmp_path / "batch.zip"
    archive.write_bytes(zip_of(fixture_images(["breast"])[:2]))
    result = app.test_cli_runner().invoke(args=["jobs", "submit", str(archive), "--email", "batch@example.org"])
    assert result.exit_code == 0, result.output
    assert "done, 2 items." in result.output
    refused = app.test_cli_runner().invoke(args=["jobs", "worker"])
    assert refused.exit_code != 0 and "CELERY_BROKER_URL is not set" in refused.output
