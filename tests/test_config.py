"""Configuration is read once from the environment; bad or missing values stop start-up with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import (
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    TestingConfig,
    config_for_environment,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SECRET = "s" * 40
PG_URL = "postgresql://medsight:pw@db.internal:5432/medsight"


def test_development_is_the_default(tmp_path):
    config = config_for_environment({}, tmp_path)
    assert isinstance(config, DevelopmentConfig)
    assert config.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path / 'medsight.sqlite3'}"
    assert config.STORAGE_LOCAL_ROOT == str(tmp_path / "photos")
    assert config.S3_BUCKET is None
    assert config.AUTO_MIGRATE is True


def test_development_secret_is_generated_once_kept_private_and_reused(tmp_path):
    first = config_for_environment({}, tmp_path).JWT_SECRET_KEY
    secret_file = tmp_path / "dev-jwt-secret"
    assert secret_file.read_text().strip() == first and len(first) >= 64
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert config_for_environment({}, tmp_path).JWT_SECRET_KEY == first


def test_explicit_database_url_turns_off_auto_migration_and_pins_psycopg2(tmp_path):
    config = config_for_environment({"DATABASE_URL": PG_URL}, tmp_path)
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg2://medsight:pw@db.internal:5432/medsight"
    assert config.AUTO_MIGRATE is False
    assert config.SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] is True
    heroku = config_for_environment({"DATABASE_URL": "postgres://u@h/d"}, tmp_path)
    assert heroku.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg2://u@h/d"


@pytest.mark.parametrize(
    "environ,reason",
    [
        ({"MEDSIGHT_ENV": "production"}, "JWT_SECRET_KEY and DATABASE_URL must be set when MEDSIGHT_ENV=production"),
        ({"MEDSIGHT_ENV": "production", "JWT_SECRET_KEY": SECRET}, "DATABASE_URL must be set"),
        ({"MEDSIGHT_ENV": "production", "DATABASE_URL": PG_URL}, "JWT_SECRET_KEY must be set"),
        ({"MEDSIGHT_ENV": "production", "DATABASE_URL": PG_URL, "JWT_SECRET_KEY": "short"}, "at least 32"),
        ({"MEDSIGHT_ENV": "staging"}, "MEDSIGHT_ENV must be one of development, testing, production"),
        ({"MAX_UPLOAD_MB": "ten"}, "MAX_UPLOAD_MB must be a whole number, got 'ten'"),
        ({"MAX_UPLOAD_MB": "0"}, "MAX_UPLOAD_MB must be between 1 and 1024"),
        ({"DATABASE_URL": "mysql://u@h/d"}, "DATABASE_URL must start with postgresql:// or sqlite:///"),
        ({"S3_BUCKET": "b", "S3_ENDPOINT_URL": "localhost:9000"}, "S3_ENDPOINT_URL must be an http(s) URL"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be between 0 and 10"),
        ({"AUTH_RATE_LIMIT": "lots"}, "AUTH_RATE_LIMIT must be a rate like '10 per minute', got 'lots'"),
        ({"AUTH_ACCOUNT_RATE_LIMIT": "5 per fortnight"}, "AUTH_ACCOUNT_RATE_LIMIT must be a rate"),
        ({"UPLOAD_RATE_LIMIT": "many"}, "UPLOAD_RATE_LIMIT must be a rate like '10 per minute', got 'many'"),
        ({"STORAGE_QUOTA_MB": "2 GB"}, "STORAGE_QUOTA_MB must be a whole number, got '2 GB'"),
    ],
)
def test_bad_or_missing_settings_stop_start_up_with_a_reason(tmp_path, environ, reason):
    with pytest.raises(ConfigError) as raised:
        config_for_environment(environ, tmp_path)
    assert reason in str(raised.value.code) and "\n" not in str(raised.value.code)


def test_production_starts_with_secret_and_database(tmp_path):
    config = config_for_environment(
        {"MEDSIGHT_ENV": "production", "JWT_SECRET_KEY": SECRET, "DATABASE_URL": PG_URL, "S3_BUCKET": "photos"},
        tmp_path,
    )
    assert isinstance(config, ProductionConfig)
    assert config.JWT_SECRET_KEY == SECRET and not config.DEBUG and not config.AUTO_MIGRATE
    assert not (tmp_path / "dev-jwt-secret").exists()


def test_upload_limit_sets_max_content_length(tmp_path):
    config = TestingConfig({"MAX_UPLOAD_MB": "3"}, tmp_path)
    assert config.MAX_UPLOAD_MB == 3
    assert 3 * 1024 * 1024 < config.MAX_CONTENT_LENGTH < 4 * 1024 * 1024


def test_uploads_are_limited_per_account_by_default(tmp_path):
    config = TestingConfig({}, tmp_path)
    assert config.UPLOAD_RATE_LIMIT == "60 per minute"
    assert config.STORAGE_QUOTA_BYTES == 2 * 1024 * 1024 * 1024
    assert TestingConfig({"STORAGE_QUOTA_MB": "0"}, tmp_path).STORAGE_QUOTA_BYTES == 0  # no quota


def test_s3_settings_come_from_the_environment(tmp_path):
    config = TestingConfig(
        {"S3_BUCKET": "medsight-photos", "S3_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_DEFAULT_REGION": "eu-west-1"},
        tmp_path,
    )
    assert (config.S3_BUCKET, config.S3_ENDPOINT_URL, config.S3_REGION) == (
        "medsight-photos",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert TestingConfig({"S3_REGION": "us-east-2", "AWS_DEFAULT_REGION": "x"}, tmp_path).S3_REGION == "us-east-2"


def test_production_without_secrets_exits_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET_KEY", "DATABASE_URL")}
    env.update(MEDSIGHT_ENV="production", MEDSIGHT_INSTANCE_PATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "from app import create_app; create_app()"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "MedSight configuration error: JWT_SECRET_KEY and DATABASE_URL must be set when MEDSIGHT_ENV=production"
    ]
