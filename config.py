"""Configuration: one class per environment, values read from the environment once and validated.

MEDSIGHT_ENV picks the class (development when unset). With nothing else set the app runs on the
embedded default: a SQLite file and a photo folder under the Flask instance folder, and a
development JWT secret generated once and kept there. Production refuses to start without an
explicit JWT_SECRET_KEY and DATABASE_URL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from cnn_model.card import ARTIFACTS_DIR
from cnn_model.modalities import MODALITIES, SPECS
from constants import AUTO_MODALITY

PROJECT_ROOT = Path(__file__).resolve().parent
DEV_JWT_SECRET_FILE = "dev-jwt-secret"
JWT_SECRET_MIN_LENGTH = 32  # characters; HS256 wants a key at least as long as its 256-bit hash
DEV_DATABASE_FILE = "medsight.sqlite3"
DEV_PHOTO_FOLDER = "photos"
METRICS_TOKEN_MIN_LENGTH = 16
BROKER_SCHEMES = ("amqp", "pyamqp", "amqps", "redis", "rediss")


class ConfigError(SystemExit):
    """A setting is missing or malformed.

    A SystemExit on purpose: a bad configuration is fatal, and whoever starts the app (flask,
    gunicorn, python app.py) should print the one-line reason and stop, not a traceback.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"MedSight configuration error: {reason}")
        self.reason = reason


def _int_setting(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _bool_setting(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _choice_setting(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _origins_setting(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in env.get(name, "").split(",") if part.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ConfigError(f"{name} must list origins like https://app.example.org, got {origin!r}")
    return origins


def _database_url(raw: str) -> str:
    url = raw.strip()
    scheme = urlsplit(url).scheme
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2. postgres:// is Heroku's spelling.
    if scheme in ("postgres", "postgresql"):
        url = "postgresql+psycopg2" + url[len(scheme) :]
        scheme = "postgresql+psycopg2"
    if scheme not in ("postgresql", "postgresql+psycopg2", "sqlite"):
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// or sqlite:///, got scheme {scheme or '(none)'!r}"
        )
    return url


def _development_jwt_secret(instance_path: Path) -> str:
    """Read the development JWT secret from the instance folder, creating it on first use."""
    path = instance_path / DEV_JWT_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text("utf-8").strip()
        if len(secret) < JWT_SECRET_MIN_LENGTH:
            raise ConfigError(f"{path} is damaged (too short); delete it to have a new one made") from None
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as secret_file:
        secret_file.write(secret + "\n")
    return secret


def _api_description() -> str:
    kinds = "; ".join(spec.display_name for spec in SPECS.values())
    return (
        f"Classify medical images with CNNs trained on public research datasets, one per kind of image ({kinds}), "
        "and keep the results in your history. "
        "Predictions are not a diagnosis: consult a qualified clinician about any health concern."
    )


class BaseConfig:
    """Safe defaults shared by every environment; subclasses say what differs."""

    NAME = "base"
    DEBUG = False
    TESTING = False
    # Apply migrations at start-up. Only for the embedded SQLite default, where the app owns its database.
    AUTO_MIGRATE = False

    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # The API reads JWTs from the Authorization header only; browser pages ask for the cookies
    # explicitly (views.session), so a cookie never authorizes an API call.
    JWT_TOKEN_LOCATION = ["headers"]
    # Browser sessions: access + refresh JWT in HttpOnly, SameSite=Strict cookies with double-submit
    # CSRF; state-changing forms carry the token in their hidden csrf_token field. Strict, not Lax:
    # a link from another site must not open a page under the session (an admin's read of someone
    # else's record writes an audit event), so such a visit arrives signed out.
    JWT_COOKIE_SECURE = False
    JWT_COOKIE_SAMESITE = "Strict"
    JWT_COOKIE_CSRF_PROTECT = True
    JWT_CSRF_CHECK_FORM = True
    JWT_ACCESS_COOKIE_NAME = "medsight_access"
    JWT_REFRESH_COOKIE_NAME = "medsight_refresh"
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=30)
    # werkzeug's scrypt with its default (slow) cost; testing lowers the cost to keep the suite quick.
    PASSWORD_HASH_METHOD = "scrypt"

    API_TITLE = "MedSight API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "api/v1/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "api/docs"
    # Swagger UI's assets come from the swagger-ui-bundle package, served by the app (resources.api):
    # the docs work without internet access.
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"

    REQUIRED_IN_ENV: tuple[str, ...] = ()
    # GET /metrics without a token; production keeps it closed unless METRICS_TOKEN is set.
    METRICS_OPEN = True
    # Threads of the in-process job pool used when no CELERY_BROKER_URL is set.
    JOB_WORKER_THREADS_DEFAULT = 2

    def __init__(self, environ: Mapping[str, str] | None = None, instance_path: str | os.PathLike | None = None):
        env = os.environ if environ is None else environ
        # Built per config from the modality registry, so a modality added to it is named in the API docs.
        self.API_SPEC_OPTIONS = {"info": {"description": _api_description()}}
        self.instance_path = Path(instance_path or PROJECT_ROOT / "instance")
        missing = [name for name in self.REQUIRED_IN_ENV if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} must be set when MEDSIGHT_ENV={self.NAME}")

        database_url = env.get("DATABASE_URL", "").strip()
        self.SQLALCHEMY_DATABASE_URI = _database_url(database_url) if database_url else self.default_database_url()
        self.SQLALCHEMY_ENGINE_OPTIONS = self.engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.USES_EMBEDDED_DATABASE = not database_url

        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY", "").strip() or self.default_jwt_secret()
        if len(self.JWT_SECRET_KEY) < JWT_SECRET_MIN_LENGTH:
            raise ConfigError(f"JWT_SECRET_KEY must be at least {JWT_SECRET_MIN_LENGTH} characters long")

        self.MAX_UPLOAD_MB = _int_setting(env, "MAX_UPLOAD_MB", 10, 1, 1024)
        # Multipart overhead on top of the file itself: a few KiB of headers and form fields.
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_MB * 1024 * 1024 + 64 * 1024

        # How many reverse proxies in front of the app set X-Forwarded-For (0: trust no such header).
        self.TRUSTED_PROXIES = _int_setting(env, "TRUSTED_PROXIES", 0, 0, 10)

        self.MODEL_DIR = str(Path(env.get("MODEL_DIR", "").strip() or ARTIFACTS_DIR))
        # Uploads: the file itself may be MAX_UPLOAD_BYTES; decoding stops at MAX_IMAGE_PIXELS (a bomb guard).
        self.MAX_UPLOAD_BYTES = self.MAX_UPLOAD_MB * 1024 * 1024
        self.MAX_IMAGE_PIXELS = _int_setting(env, "MAX_IMAGE_PIXELS", 40_000_000, 10_000, 400_000_000)
        # A JPEG is decoded scaled down (libjpeg), any other format whole, 4 bytes a pixel: those stop sooner.
        # 4096 x 4096 holds every modality's images: digital chest radiographs, the largest, reach about 4300 x 3500.
        self.MAX_FULL_DECODE_PIXELS = _int_setting(env, "MAX_FULL_DECODE_PIXELS", 4096 * 4096, 10_000, 400_000_000)
        # What POST /predict (the original apps' endpoint) reads an upload as when the client names no
        # modality: "auto" lets the modality gate decide; a modality name fixes it (the gate still checks).
        self.DEFAULT_MODALITY = _choice_setting(env, "DEFAULT_MODALITY", AUTO_MODALITY, (*MODALITIES, AUTO_MODALITY))
        # POST /predict's answer: the skin app's shape with display names ("full"), or the pneumonia app's
        # {"prediction": "<display name>"} ("label").
        self.SEED_PREDICT_SHAPE = _choice_setting(env, "SEED_PREDICT_SHAPE", "full", ("full", "label"))
        # Let POST /predict answer without a token, as the original apps did: classified, never stored,
        # limited per client address to ANONYMOUS_PREDICT_RATE (flask-limiter notation).
        self.ANONYMOUS_PREDICT = _bool_setting(env, "ANONYMOUS_PREDICT", False)
        self.ANONYMOUS_PREDICT_RATE = env.get("ANONYMOUS_PREDICT_RATE", "").strip() or "30 per minute"
        # Shared state between app nodes (rate-limit counters); in memory, per process, when unset.
        self.REDIS_URL = env.get("REDIS_URL", "").strip() or None
        if self.REDIS_URL and urlsplit(self.REDIS_URL).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"REDIS_URL must be a redis:// URL, got {self.REDIS_URL!r}")
        # Without Redis: limits' in-process store, less the thread it starts per count (services.memory_limits).
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "medsight-memory://"
        # How long a worker reuses a personal access token's lookup (0: every request reads the database). Any
        # revocation, disabled account or password change empties every worker's copy at once
        # (services.token_cache: through Redis when REDIS_URL is set, a file in the instance folder otherwise).
        self.PAT_CACHE_SECONDS = _int_setting(env, "PAT_CACHE_SECONDS", 30, 0, 3600)
        self.RATELIMIT_HEADERS_ENABLED = True
        # Log in, register, refresh, create a token, change the password, delete the account (API and pages
        # alike): per client address, and per account (the email a body names, or the caller).
        # flask-limiter notation, limits separated by ';'.
        self.AUTH_RATE_LIMIT = env.get("AUTH_RATE_LIMIT", "").strip() or "20 per minute; 300 per hour"
        self.AUTH_ACCOUNT_RATE_LIMIT = env.get("AUTH_ACCOUNT_RATE_LIMIT", "").strip() or "10 per minute"
        # Per account: uploads (the API, POST /predict and the upload page counting together), and the bytes its
        # photos and DICOM originals may take in storage (0: no quota).
        self.UPLOAD_RATE_LIMIT = env.get("UPLOAD_RATE_LIMIT", "").strip() or "60 per minute"
        self.STORAGE_QUOTA_MB = _int_setting(env, "STORAGE_QUOTA_MB", 2048, 0, 100_000_000)
        self.STORAGE_QUOTA_BYTES = self.STORAGE_QUOTA_MB * 1024 * 1024
        for name in ("AUTH_RATE_LIMIT", "AUTH_ACCOUNT_RATE_LIMIT", "ANONYMOUS_PREDICT_RATE", "UPLOAD_RATE_LIMIT"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{name} must be a rate like '10 per minute', got {getattr(self, name)!r}") from None

        # GET /metrics: open where METRICS_OPEN (development, testing); with METRICS_TOKEN set, only to a
        # scraper that sends it as its bearer token, in every environment.
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "").strip() or None
        if self.METRICS_TOKEN is not None and len(self.METRICS_TOKEN) < METRICS_TOKEN_MIN_LENGTH:
            raise ConfigError(f"METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters long")
        # Browser apps on other origins that may call the API (CORS), as exact origins separated by commas.
        self.CORS_ORIGINS = _origins_setting(env, "CORS_ORIGINS")

        self._read_job_settings(env)

        self.S3_BUCKET = env.get("S3_BUCKET", "").strip() or None
        self.S3_ENDPOINT_URL = env.get("S3_ENDPOINT_URL", "").strip() or None
        self.S3_REGION = (env.get("S3_REGION", "") or env.get("AWS_DEFAULT_REGION", "")).strip() or None
        # Credentials: explicit S3_* values if given, else boto3's own chain (AWS_* variables, profiles, roles).
        self.S3_ACCESS_KEY_ID = env.get("S3_ACCESS_KEY_ID", "").strip() or None
        self.S3_SECRET_ACCESS_KEY = env.get("S3_SECRET_ACCESS_KEY", "").strip() or None
        if self.S3_ENDPOINT_URL and urlsplit(self.S3_ENDPOINT_URL).scheme not in ("http", "https"):
            raise ConfigError(f"S3_ENDPOINT_URL must be an http(s) URL, got {self.S3_ENDPOINT_URL!r}")
        self.STORAGE_LOCAL_ROOT = str(
            Path(env.get("STORAGE_LOCAL_ROOT", "").strip() or self.instance_path / DEV_PHOTO_FOLDER)
        )

    def _read_job_settings(self, env: Mapping[str, str]) -> None:
        """Batch jobs: where their chunks are queued, and the limits an archive is held to before any work."""
        # A broker (RabbitMQ's amqp://, or redis://) sends chunks to Celery workers; unset, an in-process pool.
        self.CELERY_BROKER_URL = env.get("CELERY_BROKER_URL", "").strip() or None
        if self.CELERY_BROKER_URL and urlsplit(self.CELERY_BROKER_URL).scheme not in BROKER_SCHEMES:
            raise ConfigError(f"CELERY_BROKER_URL must be an amqp:// or redis:// URL, got {self.CELERY_BROKER_URL!r}")
        self.CELERY_QUEUE = env.get("CELERY_QUEUE", "").strip() or "medsight.jobs"
        # The embedded pool's threads; 0 scores a job in the request that submits it (tests).
        self.JOB_WORKER_THREADS = _int_setting(env, "JOB_WORKER_THREADS", self.JOB_WORKER_THREADS_DEFAULT, 0, 64)
        self.JOB_CHUNK_SIZE = _int_setting(env, "JOB_CHUNK_SIZE", 100, 1, 1000)
        self.JOB_MAX_ARCHIVE_MB = _int_setting(env, "JOB_MAX_ARCHIVE_MB", 500, 1, 10_240)
        self.JOB_MAX_ARCHIVE_BYTES = self.JOB_MAX_ARCHIVE_MB * 1024 * 1024
        self.JOB_MAX_ENTRIES = _int_setting(env, "JOB_MAX_ENTRIES", 20_000, 1, 1_000_000)
        self.JOB_MAX_UNCOMPRESSED_MB = _int_setting(env, "JOB_MAX_UNCOMPRESSED_MB", 2048, 1, 102_400)
        self.JOB_MAX_COMPRESSION_RATIO = _int_setting(env, "JOB_MAX_COMPRESSION_RATIO", 100, 2, 10_000)
        # Jobs one account may have queued or running at once; more are refused (429 too_many_jobs).
        self.JOB_MAX_ACTIVE_PER_ACCOUNT = _int_setting(env, "JOB_MAX_ACTIVE_PER_ACCOUNT", 3, 1, 1000)

    def default_database_url(self) -> str:
        self.instance_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.instance_path / DEV_DATABASE_FILE}"

    def default_jwt_secret(self) -> str:
        raise ConfigError(f"JWT_SECRET_KEY must be set when MEDSIGHT_ENV={self.NAME}")

    @staticmethod
    def engine_options(database_url: str) -> dict:
        if database_url.startswith("postgresql"):
            # Fail fast when the database is away, and drop connections that died while pooled.
            return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 3}}
        return {}


class DevelopmentConfig(BaseConfig):
    NAME = "development"
    DEBUG = True

    def __init__(self, environ=None, instance_path=None):
        super().__init__(environ, instance_path)
        self.AUTO_MIGRATE = self.USES_EMBEDDED_DATABASE

    def default_jwt_secret(self) -> str:
        self.instance_path.mkdir(parents=True, exist_ok=True)
        return _development_jwt_secret(self.instance_path)


class TestingConfig(BaseConfig):
    __test__ = False  # a config, not a pytest test class
    NAME = "testing"
    TESTING = True
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
    # Jobs scored in the submitting request: nothing runs on after a test has emptied the tables.
    JOB_WORKER_THREADS_DEFAULT = 0

    def default_jwt_secret(self) -> str:
        return secrets.token_hex(32)


class ProductionConfig(BaseConfig):
    NAME = "production"
    JWT_COOKIE_SECURE = True  # session cookies only over HTTPS
    METRICS_OPEN = False
    REQUIRED_IN_ENV = ("JWT_SECRET_KEY", "DATABASE_URL")


CONFIGS = {cls.NAME: cls for cls in (DevelopmentConfig, TestingConfig, ProductionConfig)}


def config_for_environment(
    environ: Mapping[str, str] | None = None, instance_path: str | os.PathLike | None = None
) -> BaseConfig:
    """The configuration MEDSIGHT_ENV asks for, built from the environment."""
    env = os.environ if environ is None else environ
    name = env.get("MEDSIGHT_ENV", "").strip().lower() or DevelopmentConfig.NAME
    if name not in CONFIGS:
        raise ConfigError(f"MEDSIGHT_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return CONFIGS[name](env, instance_path)
