"""/api/v1/me: the caller's own data, exported in one zip or deleted with the account."""

from flask.views import MethodView

from auth import auth_rate_limited, auth_required, current_user
from managers.account_data import AccountDataManager
from resources.account_export import EXPORT_DOC, send_export
from resources.api import Blueprint
from schemas.account_data import AccountDeleteSchema

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="Your own data: export it, or delete it all")


@blp.route("")
class Me(MethodView):
    @auth_required(personal_tokens=False)
    @auth_rate_limited("account_delete")  # the password is a guess like a sign-in's
    @blp.arguments(AccountDeleteSchema)
    @blp.response(204)
    @blp.alt_response(409, description="The last administrator's account (code last_admin)")
    @blp.alt_response(422, description="Wrong password (details.password)")
    @blp.alt_response(
        429,
        description="Too many deletions tried for this account or from this address, or wrong passwords "
        "(counted with failed sign-ins): see Retry-After",
    )
    @blp.alt_response(503, description="Storage or database unavailable; nothing was deleted from the database")
    def delete(self, body):
        """Delete the account with every prediction, photo, heatmap and token; it cannot be undone (takes a login)."""
        AccountDataManager.delete_own(current_user(), body["password"])


@blp.route("/export")
class MyExport(MethodView):
    @auth_required()
    @blp.response(200, content_type="application/zip", description=EXPORT_DOC)
    def get(self):
        """Everything MedSight keeps about you, in one zip."""
        return send_export(AccountDataManager.export(current_user()))
