"""Administration: the user list and its changes, and the audit log. Every read is itself audited."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select

from constants import AuditAction, Role
from managers.audit import AuditManager
from managers.pagination import ListFilters, Page, list_page
from managers.transactions import unit_of_work
from managers.users import UserManager, normalise_email
from models import AuditEvent, User
from utils.errors import Conflict


@dataclass(frozen=True)
class AuditFilters(ListFilters):
    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    after: datetime | None = None
    before: datetime | None = None

    def conditions(self) -> list:
        conditions = []
        if self.actor_id is not None:
            conditions.append(AuditEvent.actor_id == self.actor_id)
        if self.action is not None:
            conditions.append(AuditEvent.action == self.action)
        if self.target_type is not None:
            conditions.append(AuditEvent.target_type == self.target_type)
        if self.target_id is not None:
            conditions.append(AuditEvent.target_id == self.target_id)
        if self.after is not None:
            conditions.append(AuditEvent.at >= self.after)
        if self.before is not None:
            conditions.append(AuditEvent.at < self.before)
        return conditions


@dataclass(frozen=True)
class UserFilters(ListFilters):
    role: Role | str | None = None
    is_active: bool | None = None
    email: str | None = None  # a part of the address

    def conditions(self) -> list:
        conditions = []
        if self.role is not None:
            conditions.append(User.role == Role(self.role).value)
        if self.is_active is not None:
            conditions.append(User.is_active == self.is_active)
        if self.email:
            conditions.append(User.email.contains(normalise_email(self.email), autoescape=True))
        return conditions


class AdminManager:
    @staticmethod
    def list_users(admin: User, filters: UserFilters, page: int, per_page: int) -> Page:
        """Accounts, newest first; filters.email matches a part of the address."""
        newest_first = select(User).order_by(User.created_at.desc(), User.id.desc())

        def audit(result: Page) -> None:
            AuditManager.record(
                AuditAction.ADMIN_LIST_USERS,
                actor=admin,
                target_type="user",
                details={
                    "filters": asdict(filters),
                    "page": page,
                    "user_ids": [str(user.id) for user in result.items if user.id != admin.id],
                },
            )

        return list_page(newest_first, filters.conditions(), page, per_page, audit=audit)

    @staticmethod
    def get_user(admin: User, user_id: uuid.UUID) -> User:
        user = UserManager.get(user_id)
        if user.id != admin.id:
            with unit_of_work():
                AuditManager.record(AuditAction.ADMIN_READ_USER, actor=admin, target_type="user", target_id=user.id)
        return user

    @staticmethod
    def update_user(
        admin: User, user_id: uuid.UUID, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        """Change an account's role and/or enable or disable it, in one transaction, each change audited.

        An admin cannot demote or disable themselves: that is how the last admin locks everyone out.
        """
        user = UserManager.get(user_id)
        if user.id == admin.id and ((role is not None and role != user.role) or is_active is False):
            raise Conflict("You cannot demote or disable your own account.", code="own_account")
        with unit_of_work():
            if role is not None and role != user.role:
                UserManager.set_role(user, role, actor=admin)
            if is_active is not None and is_active != user.is_active:
                UserManager.set_active(user, is_active, actor=admin)
        return user

    @staticmethod
    def list_audit(admin: User, filters: AuditFilters, page: int, per_page: int) -> Page:
        """The audit trail, newest first; this read is recorded too (after the page is taken)."""
        newest_first = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())

        def audit(_result: Page) -> None:
            AuditManager.record(
                AuditAction.ADMIN_READ_AUDIT,
                actor=admin,
                target_type="audit_event",
                details={"filters": filters.described(), "page": page, "per_page": per_page},
            )

        return list_page(newest_first, filters.conditions(), page, per_page, audit=audit)
