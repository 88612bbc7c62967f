"""Accounts: create them, find them, change their role, disable them. The password policy lives here."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable
from functools import cache

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from constants import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, PASSWORD_MIN_SCORE, AuditAction, Role
from db import db
from managers.audit import AuditManager
from managers.sign_in_backoff import SignInBackoff
from managers.transactions import hold_write_lock, identity_of, unit_of_work
from models import User
from utils.errors import Conflict, Forbidden, NotFound, ValidationFailed

# zxcvbn's time grows with the square of the length, and some 64 characters full of l33t symbols took
# it seconds: a longer password is judged by its first 24 (a few milliseconds for most, at most about
# 0.4 s, a few scrypt hashes' worth).
ESTIMATED_CHARACTERS = 24
TOO_EASY_TO_GUESS = (
    "Avoid your name or email, common passwords, words, dates, keyboard patterns and repeats, "
    "or variations of them; several uncommon words together work well."
)
# zxcvbn keeps the words it is given (user_inputs) in a module-level dict between storing and reading
# them, so two threads must not estimate at once; the work holds the GIL anyway.
_estimator_lock = threading.Lock()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _words_of(email: str | None) -> list[str]:
    """What a password built from the email would be made of: jane.doe@x.org gives janedoe, jane, doe, x, org."""
    if not email:
        return []
    local = email.partition("@")[0]
    return [email, local, re.sub(r"[._+-]", "", local), *re.split(r"[@._+-]+", email)]


def guessability_problem(password: str, email: str | None = None) -> str | None:
    """Why zxcvbn finds a password too easy to guess (its own warning, where it has one); None if it is not."""
    if not password:  # zxcvbn fails on one; the length rule speaks for it
        return None
    with _estimator_lock:
        estimate = zxcvbn(password[:ESTIMATED_CHARACTERS], user_inputs=_words_of(email))
    if estimate["score"] >= PASSWORD_MIN_SCORE:
        return None
    warning = estimate["feedback"]["warning"]
    because = f": {warning[0].lower()}{warning[1:]}" if warning else "."
    return f"This password is too easy to guess{because} {TOO_EASY_TO_GUESS}"


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Why a password is too weak, as messages for the user; empty when it is acceptable."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"Use at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
    if not any(c.isalpha() for c in password) or all(c.isalpha() for c in password):
        problems.append("Mix letters with digits or symbols.")
    if email and password.strip().lower() == normalise_email(email):
        problems.append("The password must not be your email address.")
    too_easy = guessability_problem(password, normalise_email(email) if email else None)
    if too_easy:
        problems.append(too_easy)
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    return generate_password_hash("not a real password 1", method=method)


def verify_password(user: User | None, password: str) -> bool:
    """Check password against user's hash; with no user, spend the same time and return False."""
    if user is None:
        # Same KDF work as a real check, so response time does not reveal which emails exist.
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return False
    return check_password_hash(user.password_hash, password)


class UserManager:
    @staticmethod
    def register(email: str, password: str, full_name: str | None = None) -> User:
        """Open a patient account; Conflict (email_taken) if the email is already registered."""
        return UserManager.create(
            email, password, role=Role.PATIENT, full_name=full_name, audit_action=AuditAction.REGISTER
        )

    @staticmethod
    def create(
        email: str,
        password: str,
        *,
        role: Role = Role.PATIENT,
        full_name: str | None = None,
        audit_action: AuditAction = AuditAction.REGISTER,
    ) -> User:
        """Create an account with the given role after checking the password policy."""
        email = normalise_email(email)
        problems = password_problems(password, email)
        if problems:
            raise ValidationFailed(details={"password": problems})
        if UserManager.find_by_email(email) is not None:
            raise Conflict("An account with this email already exists.", code="email_taken")
        user = User(
            email=email,
            password_hash=hash_password(password),
            role=Role(role).value,
            full_name=(full_name or "").strip() or None,
        )
        try:
            with unit_of_work():
                db.session.add(user)
                db.session.flush()
                AuditManager.record(audit_action, actor=user, target_type="user", target_id=user.id)
        except IntegrityError as exc:
            # Two registrations racing for the same email: the unique constraint decides.
            raise Conflict("An account with this email already exists.", code="email_taken") from exc
        return user

    @staticmethod
    def find_by_email(email: str) -> User | None:
        if "\x00" in email:  # no address holds one, and PostgreSQL refuses to compare with it
            return None
        return db.session.scalar(select(User).where(User.email == normalise_email(email)))

    @staticmethod
    def get(user_id: uuid.UUID | str) -> User:
        """The user with this id; NotFound if there is none."""
        user = UserManager.find(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

    @staticmethod
    def find(user_id: uuid.UUID | str) -> User | None:
        try:
            key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
        except ValueError:
            return None
        return db.session.get(User, key)

    @staticmethod
    def emails_by_id(user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The email of each of these accounts that still exists, in one query (to label lists of ids)."""
        wanted = {user_id for user_id in user_ids if user_id is not None}
        if not wanted:
            return {}
        rows = db.session.execute(select(User.id, User.email).where(User.id.in_(wanted)))
        return {row.id: row.email for row in rows}

    @staticmethod
    def find_active(user_id: uuid.UUID | str) -> User | None:
        """The user if the account exists and is enabled: checked on every authenticated request."""
        user = UserManager.find(user_id)
        return user if user is not None and user.is_active else None

    @staticmethod
    def get_by_email(email: str) -> User:
        user = UserManager.find_by_email(email)
        if user is None:
            raise NotFound(f"No account with email {normalise_email(email)}.")
        return user

    @staticmethod
    def set_role(user: User, role: Role | str, *, actor: User | None = None) -> User:
        try:
            new_role = Role(role)
        except ValueError:
            raise ValidationFailed(details={"role": [f"Must be one of: {', '.join(Role)}."]}) from None
        with unit_of_work():
            if actor is not None and new_role != Role.ADMIN:  # the command line may (it can create admins too)
                UserManager.refuse_last_admin(user, "The last administrator cannot be demoted.", actor=actor)
            previous = user.role
            user.role = new_role.value
            AuditManager.record(
                AuditAction.USER_SET_ROLE,
                actor=actor,
                target_type="user",
                target_id=user.id,
                details={"from": previous, "to": new_role.value},
            )
        return user

    @staticmethod
    def confirm_password(user: User, password: str, *, field: str, message: str = "The password is incorrect.") -> None:
        """Check a signed-in user's password before a change only they may make; ValidationFailed on field if wrong.

        A session someone else took over must not become a way to guess the password, so this is a
        sign-in in all but name: while the account waits after wrong passwords every try is refused
        (429 with Retry-After, the right password included), and a wrong one counts towards that wait
        (managers.sign_in_backoff). The caller resets the back-off (SignInBackoff.succeeded) once its
        change is made, as a successful sign-in does.
        """
        SignInBackoff.check(user.email)
        if not verify_password(user, password):
            SignInBackoff.failed(user.email)
            raise ValidationFailed(details={field: [message]})

    @staticmethod
    def change_password(user: User, current_password: str, new_password: str) -> User:
        """Replace user's password after checking the current one and the policy (audited).

        Raises the account's token generation, so every JWT issued before is refused (AuthManager.
        change_password issues the caller new ones). The current password is a guess like a sign-in's
        in a session someone else took over: wrong ones count towards the same per-account back-off
        (429 while the account waits), and a change resets it.
        """
        UserManager.confirm_password(
            user, current_password, field="current_password", message="The current password is incorrect."
        )
        problems = password_problems(new_password, user.email)
        if problems:
            raise ValidationFailed(details={"new_password": problems})
        with unit_of_work():
            user.password_hash = hash_password(new_password)
            # Raised in SQL, so two changes at once cannot both leave the same generation behind.
            user.token_generation = User.token_generation + 1
            AuditManager.record(AuditAction.PASSWORD_CHANGE, actor=user, target_type="user", target_id=user.id)
        SignInBackoff.succeeded(user.email)
        return user

    @staticmethod
    def set_active(user: User, active: bool, *, actor: User | None = None) -> User:
        """Enable or disable an account; a disabled account's tokens stop working on the next request."""
        with unit_of_work():
            if actor is not None and not active:
                UserManager.refuse_last_admin(user, "The last administrator cannot be disabled.", actor=actor)
            user.is_active = active
            AuditManager.record(
                AuditAction.USER_ENABLE if active else AuditAction.USER_DISABLE,
                actor=actor,
                target_type="user",
                target_id=user.id,
            )
        return user

    @staticmethod
    def lock_with_admins(user: User, *, deleting: bool = False) -> set[uuid.UUID]:
        """Lock user's row and every active admin's until the transaction ends; the active admins' ids.

        The last-admin rule reads the admins, then writes: two admins demoting, disabling or deleting each
        other at once must not both read the other as the one who stays. PostgreSQL locks the rows (in id
        order, so two such transactions cannot deadlock; FOR UPDATE when deleting, which also holds off
        inserts that refer to the account), SQLite takes its write lock first. user is reloaded from its
        locked row; NotFound if it is gone.
        """
        hold_write_lock()
        user_id = identity_of(user)  # not user.id, which would reload a row another request may have deleted
        is_admin = and_(User.role == Role.ADMIN.value, User.is_active.is_(True))
        query = (
            select(User)
            .where(or_(User.id == user_id, is_admin))
            .order_by(User.id)
            .with_for_update(key_share=not deleting)
            .execution_options(populate_existing=True)
        )
        locked = db.session.scalars(query).all()
        if all(row.id != user_id for row in locked):
            raise NotFound("No such user.")
        return {row.id for row in locked if row.role == Role.ADMIN.value and row.is_active}

    @staticmethod
    def refuse_last_admin(user: User, message: str, *, actor: User | None = None, deleting: bool = False) -> None:
        """Conflict (last_admin) if user is an admin and no other active admin would remain; locks as above.

        Forbidden if actor (an admin when the request began) is no longer an active admin.
        """
        admins = UserManager.lock_with_admins(user, deleting=deleting)
        if user.role == Role.ADMIN.value and not admins - {user.id}:
            raise Conflict(message, code="last_admin")
        if actor is not None and identity_of(actor) not in admins | {identity_of(user)}:
            raise Forbidden("Your role does not allow this.", code="forbidden")

    @staticmethod
    def close_for_deletion(user: User, *, actor: User | None = None) -> bool:
        """Disable the account, committed, before its data goes: no new request of it is let in from now on.

        Conflict (last_admin) for the last admin. Returns whether it was enabled (to reopen it if the deletion fails).
        """
        with unit_of_work():
            UserManager.refuse_last_admin(user, "The last administrator's account cannot be deleted.", actor=actor)
            was_active, user.is_active = user.is_active, False
        return was_active

    @staticmethod
    def reopen(user_id: uuid.UUID) -> None:
        """Enable again an account closed for a deletion that failed, so that its owner can try again."""
        with unit_of_work():
            reopened = update(User).where(User.id == user_id).values(is_active=True)
            db.session.execute(reopened.execution_options(synchronize_session=False))
