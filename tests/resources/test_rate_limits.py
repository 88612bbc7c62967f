"""Brute force is stopped: limits per address and per account, a back-off after failed sign-ins, no common passwords."""

from __future__ import annotations

import pytest

from managers.sign_in_backoff import FREE_FAILURES, MAX_DELAY_SECONDS, delay_after
from tests.conftest import DEFAULT_PASSWORD
from tests.resources.helpers import assert_error, bearer

LOGIN = "/api/v1/auth/login"


def _login(client, email, password, address="10.0.0.1"):
    return client.post(LOGIN, json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_180_wrong_passwords_then_the_right_one_are_not_all_answered(client, patient):
    statuses = [_login(client, patient.email, f"wrong-guess-{n}").status_code for n in range(180)]
    assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES
    assert statuses.count(429) >= 170
    refused = _login(client, patient.email, DEFAULT_PASSWORD)
    assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) > 0
    assert "access_token" not in refused.get_json()


def test_the_per_address_limit_spans_accounts(client, app):
    limit = int(app.config["AUTH_RATE_LIMIT"].split()[0])
    statuses = [_login(client, f"nobody{n}@example.org", "wrong-guess-1").status_code for n in range(limit + 1)]
    assert statuses[:limit] == [401] * limit
    refused = client.post(
        LOGIN, json={"email": "x@example.org", "password": "p"}, environ_base={"REMOTE_ADDR": "10.0.0.1"}
    )
    assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) > 0
    # another address is not held back
    assert _login(client, "nobody@example.org", "wrong-guess-1", address="10.0.0.2").status_code == 401


def test_the_per_account_limit_spans_addresses(client, app, patient):
    limit = int(app.config["AUTH_ACCOUNT_RATE_LIMIT"].split()[0])
    for n in range(limit - 1):  # the fixture's own sign-in was the first
        assert _login(client, patient.email, DEFAULT_PASSWORD, address=f"10.1.0.{n + 1}").status_code == 200
    refused = _login(client, patient.email, DEFAULT_PASSWORD, address="10.1.1.1")
    assert_error(refused, 429, "too_many_requests")
    assert "Retry-After" in refused.headers


def test_failed_sign_ins_slow_the_account_down_whatever_the_address(client, patient):
    for n in range(FREE_FAILURES):
        assert _login(client, patient.email, "wrong-guess-1", address=f"10.2.0.{n + 1}").status_code == 401
    assert _login(client, patient.email, "wrong-guess-1", address="10.2.1.1").status_code == 401  # starts the wait
    waiting = _login(client, patient.email, DEFAULT_PASSWORD, address="10.2.1.2")
    error = assert_error(waiting, 429, "too_many_requests")
    assert 0 < error["details"]["retry_after"] <= delay_after(FREE_FAILURES + 1)
    # flask-limiter may raise the header to its own window's end, never below the back-off
    assert int(waiting.headers["Retry-After"]) >= error["details"]["retry_after"]


def test_an_unknown_email_is_slowed_down_exactly_like_a_known_one(client, patient):
    for email in (patient.email, "nobody-here@example.org"):
        answers = [
            _login(client, email, "wrong-guess-1", address="10.3.0.1").status_code for _ in range(FREE_FAILURES + 2)
        ]
        assert answers == [401] * (FREE_FAILURES + 1) + [429], (email, answers)


def test_the_wait_doubles_and_is_capped():
    delays = [delay_after(n) for n in range(1, 40)]
    assert delays[:FREE_FAILURES] == [0] * FREE_FAILURES
    assert delays[FREE_FAILURES + 1] == 2 * delays[FREE_FAILURES]
    assert max(delays) == MAX_DELAY_SECONDS


def test_a_successful_sign_in_resets_the_failures(client, app, patient):
    # 4 + 4 failures would make the account wait (past FREE_FAILURES) but for the success between them;
    # with the fixture's own sign-in that is 10 sign-ins, within the per-account limit.
    for _ in range(FREE_FAILURES - 1):
        _login(client, patient.email, "wrong-guess-1")
    assert _login(client, patient.email, DEFAULT_PASSWORD).status_code == 200
    for _ in range(FREE_FAILURES - 1):
        assert _login(client, patient.email, "wrong-guess-1").status_code == 401


def test_register_is_limited_per_address(client, app):
    limit = int(app.config["AUTH_ACCOUNT_RATE_LIMIT"].split()[0])  # the lower of the two
    statuses = [
        client.post(
            "/api/v1/auth/register",
            json={"email": f"new{n}@example.org", "password": "weak"},
            environ_base={"REMOTE_ADDR": "10.4.0.1"},
        ).status_code
        for n in range(int(app.config["AUTH_RATE_LIMIT"].split()[0]) + 1)
    ]
    assert statuses[-1] == 429 and statuses[:limit] == [422] * limit


def test_token_creation_and_refresh_are_limited_per_account(client, app, patient):
    limit = int(app.config["AUTH_ACCOUNT_RATE_LIMIT"].split()[0])
    for n in range(limit):
        response = client.post(
            "/api/v1/tokens",
            json={"name": f"t{n}"},
            headers=patient.headers,
            environ_base={"REMOTE_ADDR": f"10.5.0.{n + 1}"},
        )
        assert response.status_code == 201
    refused = client.post("/api/v1/tokens", json={"name": "one more"}, headers=patient.headers)
    assert_error(refused, 429, "too_many_requests")
    for n in range(limit):
        refreshed = client.post(
            "/api/v1/auth/refresh",
            headers=bearer(patient.refresh_token),
            environ_base={"REMOTE_ADDR": f"10.6.0.{n + 1}"},
        )
        assert refreshed.status_code == 200
    assert_error(client.post("/api/v1/auth/refresh", headers=bearer(patient.refresh_token)), 429, "too_many_requests")


def test_the_sign_in_page_shares_the_limits_and_the_back_off(client, app, patient):
    for n in range(FREE_FAILURES + 1):
        assert _login(client, patient.email, "wrong-guess-1", address=f"10.7.0.{n + 1}").status_code == 401
    page = client.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"email": patient.email, "password": DEFAULT_PASSWORD, "csrf_token": csrf})
    assert response.status_code == 429
    assert "medsight_access" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("password", ["password123", "qwerty12345", "Q1W2E3R4T5"])
def test_common_passwords_are_refused_at_registration(client, password):
    response = client.post("/api/v1/auth/register", json={"email": "c@example.org", "password": password})
    error = assert_error(response, 422, "validation_error")
    assert any("common" in message for message in error["details"]["password"])


def test_common_passwords_are_refused_on_a_password_change(app, patient):
    from managers.users import UserManager
    from utils.errors import ValidationFailed

    with app.app_context():
        user = UserManager.find_by_email(patient.email)
        with pytest.raises(ValidationFailed) as refused:
            UserManager.change_password(user, DEFAULT_PASSWORD, "password123")
    assert any("common" in message for message in refused.value.details["new_password"])


@pytest.mark.parametrize("password", ["P@ssw0rd123", "Password1!", "letmein123"])
def test_passwords_close_to_common_ones_are_refused_with_the_reason(client, password):
    response = client.post("/api/v1/auth/register", json={"email": "c@example.org", "password": password})
    (problem,) = assert_error(response, 422, "validation_error")["details"]["password"]
    assert problem.startswith("This password is too easy to guess: this is similar to a commonly used password.")
    assert "several uncommon words together work well" in problem  # the rule, not only the verdict


def test_a_password_made_of_the_email_is_refused(client):
    response = client.post("/api/v1/auth/register", json={"email": "Jane.Doe@example.org", "password": "janedoe2024!"})
    (problem,) = assert_error(response, 422, "validation_error")["details"]["password"]
    assert problem.startswith("This password is too easy to guess.")


def test_passwords_hard_to_guess_are_taken(client):
    for n, password in enumerate(("correct-horse-42", "plaid kettle 9 umbra", "x7#Lq2vR@9mW")):
        response = client.post("/api/v1/auth/register", json={"email": f"ok{n}@example.org", "password": password})
        assert response.status_code == 201, response.get_json()


def test_the_rate_limits_are_settings(build_app):
    app = build_app(AUTH_RATE_LIMIT="2 per minute")
    client = app.test_client()
    statuses = [client.post(LOGIN, json={"email": f"n{n}@example.org", "password": "x"}).status_code for n in range(3)]
    assert statuses == [401, 401, 429]


def _redis_url() -> str | None:
    import redis

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


def test_two_nodes_sharing_redis_share_the_back_off(build_app, tmp_path):
    url = _redis_url()
    if url is None:
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    first = build_app(REDIS_URL=url, DATABASE_URL=database)
    second = build_app(REDIS_URL=url, DATABASE_URL=database, migrate=False)
    try:
        first.extensions["counters"].reset()
        email = "shared-node@example.org"
        for n in range(FREE_FAILURES + 1):
            response = first.test_client().post(
                LOGIN, json={"email": email, "password": "wrong-guess-1"}, environ_base={"REMOTE_ADDR": f"10.9.0.{n}"}
            )
            assert response.status_code == 401
        other_node = second.test_client().post(LOGIN, json={"email": email, "password": "wrong-guess-1"})
        assert_error(other_node, 429, "too_many_requests")
    finally:
        first.extensions["counters"].reset()
        build_app(migrate=False)  # the limiter (one per process) back on memory for the tests after this one


def test_the_sign_in_page_is_limited_per_address_like_the_api(client, app):
    limit = int(app.config["AUTH_RATE_LIMIT"].split()[0])
    for n in range(limit):
        client.post(
            LOGIN, json={"email": f"api{n}@example.org", "password": "x"}, environ_base={"REMOTE_ADDR": "10.8.0.1"}
        )
    page = client.post(
        "/login", data={"email": "page@example.org", "password": "x"}, environ_base={"REMOTE_ADDR": "10.8.0.1"}
    )
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert page.headers["Retry-After"]
