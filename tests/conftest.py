"""Shared fixtures: the app on each database backend, a client, and users holding tokens.

The ``app`` fixture runs every test that uses it once on SQLite and once on PostgreSQL
(127.0.0.1:5432, user postgres; a uniquely named database is created for the session and dropped
at the end). The schema is built by running the migrations, as in production; each test leaves
the tables empty for the next. Set MEDSIGHT_TEST_BACKENDS=sqlite to run without PostgreSQL.
Those tests carry the ``postgres`` marker. The moto S3 server plugin (tests/support/moto_server.py)
the image plugin (tests/support/images.py: committed sample images, and the datasets where a
test needs them) and the PACS plugin (tests/support/orthanc.py: Orthanc with DICOMweb, started
when a test asks for it) are loaded here for the whole suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import MIGRATIONS_DIR, create_app
from auth import limiter
from config import TestingConfig
from constants import Role
from db import db
from managers.upload_quota import KnownUsage
from managers.users import UserManager
from tests.resources.helpers import bearer
from tests.support.session_report import gathered

pytest_plugins = [
    "tests.support.moto_server",
    "tests.support.images",
    "tests.support.predictions",
    "tests.support.orthanc",
    "tests.support.rabbitmq",
    "tests.support.jobs",
    "tests.support.session_report",
]

DEFAULT_PASSWORD = "correct-horse-42"
POSTGRES_ADMIN_URL = os.environ.get(
    "MEDSIGHT_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
ALL_BACKENDS = ("sqlite", "postgresql")
SELECTED_BACKENDS = tuple(
    name.strip()
    for name in os.environ.get("MEDSIGHT_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
    if name.strip() in ALL_BACKENDS
)
# Fixtures whose setup means an outside system really ran; reported at the end of the session.
_BACKEND_FIXTURES = {"moto_endpoint_url": "s3(moto server)", "orthanc": "pacs(orthanc)"}


# -- reporting which backends ran ------------------------------------------------------------


def _record_backend(config: pytest.Config, name: str) -> None:
    gathered(config, "backends")[name] = True


@pytest.fixture(scope="session")
def record_backend(pytestconfig) -> Callable[[str], None]:
    """Call with a backend's name when a fixture really started or used it."""
    return lambda name: _record_backend(pytestconfig, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    # A session fixture's own setup hook only sees the root conftest, so look at what each test got.
    yield
    for fixture_name, backend in _BACKEND_FIXTURES.items():
        if fixture_name in getattr(item, "funcargs", {}):
            _record_backend(item.config, backend)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests parametrised on the PostgreSQL backend (the app fixture's, or a test's own) carry the postgres marker.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    ran = sorted(gathered(config, "backends"))  # workers report in whatever order they finish
    terminalreporter.write_line(f"backends: {', '.join(ran) if ran else 'none'}")


# -- databases --------------------------------------------------------------------------------


def make_database(backend: str, tmp_dir) -> tuple[str, Callable[[], None]]:
    """A fresh, empty database of the given backend: its URL and a function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'medsight-{uuid.uuid4().hex[:8]}.sqlite3'}", lambda: None
    name = f"medsight_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin_engine.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc.orig}). Start it (see .ci/run), "
            "or set MEDSIGHT_TEST_BACKENDS=sqlite to run on SQLite only.",
            pytrace=False,
        )

    def drop() -> None:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()

    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    return url.render_as_string(hide_password=False), drop


def make_app(database_url: str, tmp_dir, **settings: str) -> Flask:
    """A testing app on database_url with photos under tmp_dir; settings are extra environment values."""
    environ = {"DATABASE_URL": database_url, "STORAGE_LOCAL_ROOT": str(tmp_dir / "photos"), **settings}
    return create_app(TestingConfig(environ, tmp_dir / "instance"), instance_path=tmp_dir / "instance")


def migrate_to_head(app: Flask) -> None:
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session", params=SELECTED_BACKENDS)
def database_backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def migrated_app(database_backend, tmp_path_factory, record_backend) -> Iterator[Flask]:
    """One app per backend for the session, its schema built by the migrations."""
    tmp_dir = tmp_path_factory.mktemp(database_backend)
    url, drop = make_database(database_backend, tmp_dir)
    app = make_app(url, tmp_dir)
    try:
        migrate_to_head(app)
        record_backend(database_backend)
        yield app
    finally:
        dispose(app)
        drop()


@pytest.fixture
def app(migrated_app) -> Iterator[Flask]:
    """The app on the current backend; every table is emptied after the test."""
    yield migrated_app
    limiter.reset()  # rate limits and sign-in back-off start afresh for the next test
    migrated_app.extensions["counters"].reset()
    migrated_app.extensions["known_usage"] = KnownUsage()
    with migrated_app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


@pytest.fixture
def build_app(tmp_path, record_backend) -> Iterator[Callable[..., Flask]]:
    """Make a separate, migrated app on a fresh SQLite file, for tests that add routes or change settings."""
    built: list[Flask] = []

    def build(*, migrate: bool = True, **settings: str) -> Flask:
        instance_dir = tmp_path / f"app{len(built)}"
        url, _drop = make_database("sqlite", tmp_path)
        app = make_app(settings.pop("DATABASE_URL", url), instance_dir, **settings)
        built.append(app)
        if migrate:
            migrate_to_head(app)
            record_backend("sqlite")
        return app

    yield build
    for app in built:
        dispose(app)


@pytest.fixture
def app_context(app) -> Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


# -- users holding tokens ---------------------------------------------------------------------


@dataclass
class Account:
    """A registered user as a test sees it: credentials, the tokens from logging in, the API's view."""

    email: str
    password: str
    id: str
    role: str
    access_token: str = ""
    refresh_token: str = ""
    data: dict = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


@pytest.fixture
def login(client) -> Callable[[str, str], dict]:
    def do_login(email: str, password: str = DEFAULT_PASSWORD) -> dict:
        response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return do_login


@pytest.fixture
def make_account(app, client, login) -> Callable[..., Account]:
    """Register a user through the API (an admin through the manager, as the CLI does) and log in."""

    def make(
        email: str | None = None,
        *,
        role: Role = Role.PATIENT,
        password: str = DEFAULT_PASSWORD,
        full_name: str | None = None,
    ) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.org"
        if role == Role.PATIENT:
            response = client.post(
                "/api/v1/auth/register", json={"email": email, "password": password, "full_name": full_name}
            )
            assert response.status_code == 201, response.get_json()
            data = response.get_json()
        else:
            with app.app_context():
                user = UserManager.create(email, password, role=role, full_name=full_name)
                data = {"id": str(user.id), "email": user.email, "role": user.role}
        tokens = login(email, password)
        return Account(
            email=data["email"],
            password=password,
            id=data["id"],
            role=data["role"],
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            data=data,
        )

    return make


@pytest.fixture
def patient(make_account) -> Account:
    return make_account(full_name="Pat Ient")


@pytest.fixture
def admin(make_account) -> Account:
    return make_account(role=Role.ADMIN, full_name="Ad Min")
