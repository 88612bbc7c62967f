"""/api/v1/admin/jobs: everyone's batch jobs, for admins; every look at someone else's is audited."""

import uuid

from flask.views import MethodView

from auth import auth_required, current_user
from constants import Role
from managers.jobs import JobManager
from resources.api import Blueprint
from schemas.jobs import AdminJobListSchema, AdminJobQuerySchema, AdminJobSchema

blp = Blueprint("admin_jobs", __name__, url_prefix="/api/v1/admin/jobs", description="Administration (role admin)")


@blp.route("")
class AdminJobs(MethodView):
    @auth_required(Role.ADMIN)
    @blp.arguments(AdminJobQuerySchema, location="query")
    @blp.response(200, AdminJobListSchema)
    def get(self, query):
        """Every user's jobs, newest first (user_id: one user's)."""
        return JobManager.list_all(current_user(), query.get("user_id"), query["page"], query["per_page"])


@blp.route("/<uuid:job_id>")
class AdminJob(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(200, AdminJobSchema)
    @blp.alt_response(404, description="No such job")
    def get(self, job_id: uuid.UUID):
        """Any user's job, with its counts."""
        return JobManager.get_any(current_user(), job_id)
