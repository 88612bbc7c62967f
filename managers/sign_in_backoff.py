"""Back-off after failed sign-ins: each account waits longer after each failure past a few, up to a cap.

Counted per account (the normalised email, hashed, so an unknown address is treated exactly like a
known one and the answer tells nothing about which emails have accounts), in the shared counter
store (Redis when REDIS_URL is set), so every app node applies the same wait. The wait doubles with
each failure past FREE_FAILURES and never exceeds MAX_DELAY_SECONDS; a successful sign-in resets it,
and failures are forgotten FAILURE_MEMORY_SECONDS after the first. An attacker can keep an account
waiting only by failing again every few minutes, each try from behind the same cap.

A wrong password where a signed-in user confirms a change (UserManager.confirm_password: the current
password on a password change, the password that confirms deleting the account) counts as a failed
sign-in, and the change made as a successful one: a session someone else took over is no way around it.
"""

from __future__ import annotations

import hashlib
import math

from flask import current_app

from services.counters import Counters
from utils.errors import TooManyRequests

FREE_FAILURES = 5
FIRST_DELAY_SECONDS = 2
MAX_DELAY_SECONDS = 300
FAILURE_MEMORY_SECONDS = 24 * 3600


def _counters() -> Counters:
    return current_app.extensions["counters"]


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def delay_after(failures: int) -> int:
    """Seconds an account waits after this many failures in a row."""
    if failures <= FREE_FAILURES:
        return 0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES - 1))


class SignInBackoff:
    @staticmethod
    def check(email: str) -> None:
        """TooManyRequests (429 with Retry-After) while the account is still waiting after wrong passwords."""
        wait = _counters().seconds_left(f"sign-in-wait:{_account(email)}")
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyRequests(
                f"Too many wrong passwords for this account; try again in {seconds} seconds.",
                details={"retry_after": seconds},
                headers={"Retry-After": str(seconds)},
            )

    @staticmethod
    def failed(email: str) -> None:
        account = _account(email)
        counters = _counters()
        failures = counters.increment(f"sign-in-failures:{account}", FAILURE_MEMORY_SECONDS)
        delay = delay_after(failures)
        if delay:
            counters.clear(f"sign-in-wait:{account}")
            counters.increment(f"sign-in-wait:{account}", delay)

    @staticmethod
    def succeeded(email: str) -> None:
        account = _account(email)
        _counters().clear(f"sign-in-failures:{account}")
        _counters().clear(f"sign-in-wait:{account}")
