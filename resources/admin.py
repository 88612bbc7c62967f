"""/api/v1/admin: everyone's predictions, the accounts, the audit log. Admins only; every read is audited."""

import uuid

from flask.views import MethodView

from auth import auth_required, current_user
from constants import Role
from managers.account_data import AccountDataManager
from managers.admin import AdminManager, AuditFilters, UserFilters
from managers.predictions import ImageKind, PredictionManager
from resources.account_export import EXPORT_DOC, send_export
from resources.api import Blueprint
from resources.predictions_shared import IMAGE_KIND_DOC, filters_from, send_image
from schemas.admin import AuditEventListSchema, AuditQuerySchema, UserListSchema, UserQuerySchema, UserUpdateSchema
from schemas.auth import UserSchema
from schemas.predictions import AdminPredictionListSchema, AdminPredictionQuerySchema, AdminPredictionSchema

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Administration (role admin)")

admin_required = auth_required(Role.ADMIN)


@blp.route("/predictions")
class AdminPredictions(MethodView):
    @admin_required
    @blp.arguments(AdminPredictionQuerySchema, location="query")
    @blp.response(200, AdminPredictionListSchema)
    def get(self, query):
        """Every user's predictions, newest first; the same filters as the history, plus user_id."""
        return PredictionManager.list_all(
            current_user(), filters_from(query), query["page"], query["per_page"], after=query.get("cursor")
        )


@blp.route("/predictions/<uuid:prediction_id>")
class AdminPrediction(MethodView):
    @admin_required
    @blp.response(200, AdminPredictionSchema)
    @blp.alt_response(404, description="No such prediction")
    def get(self, prediction_id: uuid.UUID):
        """Any user's prediction."""
        return PredictionManager.get_any(current_user(), prediction_id)


@blp.route("/predictions/<uuid:prediction_id>/<any(image, heatmap):kind>")
class AdminPredictionImage(MethodView):
    @admin_required
    @blp.response(200, content_type="image/*", description=IMAGE_KIND_DOC)
    @blp.alt_response(302, description="Redirect to a short-lived URL of the file in object storage")
    @blp.alt_response(404, description="No such prediction")
    def get(self, prediction_id: uuid.UUID, kind: ImageKind):
        """Any user's uploaded photo (image) or heatmap."""
        return send_image(PredictionManager.open_any_image(current_user(), prediction_id, kind))


@blp.route("/users")
class AdminUsers(MethodView):
    @admin_required
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, UserListSchema)
    def get(self, query):
        """Accounts, newest first; filter by role, is_active, part of the email."""
        return AdminManager.list_users(current_user(), UserFilters.of(query), query["page"], query["per_page"])


@blp.route("/users/<uuid:user_id>")
class AdminUser(MethodView):
    @admin_required
    @blp.response(200, UserSchema)
    @blp.alt_response(404, description="No such user")
    def get(self, user_id: uuid.UUID):
        """One account."""
        return AdminManager.get_user(current_user(), user_id)

    @auth_required(Role.ADMIN, personal_tokens=False)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(404, description="No such user")
    @blp.alt_response(409, description="An admin cannot demote or disable themselves (code own_account)")
    def patch(self, body, user_id: uuid.UUID):
        """Change an account's role, or disable / enable it (with a login: a personal access token cannot)."""
        return AdminManager.update_user(current_user(), user_id, role=body.get("role"), is_active=body.get("is_active"))

    @auth_required(Role.ADMIN, personal_tokens=False)
    @blp.response(204)
    @blp.alt_response(404, description="No such user")
    @blp.alt_response(409, description="The admin's own account (code own_account), or the last admin (last_admin)")
    def delete(self, user_id: uuid.UUID):
        """Delete an account with every prediction, photo, heatmap and token (with a login; audited)."""
        AccountDataManager.delete_by_admin(current_user(), user_id)


@blp.route("/users/<uuid:user_id>/export")
class AdminUserExport(MethodView):
    @admin_required
    @blp.response(200, content_type="application/zip", description=EXPORT_DOC)
    @blp.alt_response(404, description="No such user")
    def get(self, user_id: uuid.UUID):
        """Everything MedSight keeps about an account, in one zip, for the person it is about (audited)."""
        return send_export(AccountDataManager.export_for_admin(current_user(), user_id))


@blp.route("/audit")
class AdminAudit(MethodView):
    @admin_required
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventListSchema)
    def get(self, query):
        """The audit trail, newest first; filter by actor, action, target and time."""
        filters = AuditFilters.of(query)
        return AdminManager.list_audit(current_user(), filters, query["page"], query["per_page"])
