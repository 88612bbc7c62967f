"""/api/v1/spots: the caller's spots, one spot with its photos in time order, rename, delete, share with a clinician."""

import uuid

from flask.views import MethodView

from auth import auth_required, current_user
from managers.shares import ShareManager
from managers.spots import SpotManager
from resources.api import Blueprint
from schemas.care import NOT_A_CLINICIAN, ShareCreateSchema, SpotShareSchema
from schemas.predictions import SpotTimelineSchema
from schemas.spots import SpotChangeSchema, SpotListSchema, SpotSchema

blp = Blueprint(
    "spots",
    __name__,
    url_prefix="/api/v1/spots",
    description="Follow one spot over time: the photos an upload named it in, oldest first",
)

_NOT_YOURS = "No such spot among the caller's (someone else's is 404 too)"


@blp.route("")
class Spots(MethodView):
    @auth_required()
    @blp.response(200, SpotListSchema)
    def get(self):
        """The caller's spots, the one with the latest photo first, each with how many photos it has."""
        return {"items": SpotManager.list_for(current_user())}


@blp.route("/<uuid:spot_id>")
class Spot(MethodView):
    @auth_required()
    @blp.response(200, SpotTimelineSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, spot_id: uuid.UUID):
        """One of the caller's spots with the results of its photos, oldest first."""
        return SpotManager.timeline(current_user(), spot_id)

    @auth_required()
    @blp.arguments(SpotChangeSchema)
    @blp.response(200, SpotSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    @blp.alt_response(409, description="Another of the caller's spots has that name (code spot_name_taken)")
    def patch(self, body, spot_id: uuid.UUID):
        """Rename one of the caller's spots, or say where on the body it is."""
        SpotManager.change(current_user(), spot_id, body.get("name"), body.get("body_site"))
        return SpotManager.timeline(current_user(), spot_id)

    @auth_required()
    @blp.response(204)
    @blp.alt_response(404, description=_NOT_YOURS)
    def delete(self, spot_id: uuid.UUID):
        """Delete one of the caller's spots; its photos and results stay in the history, no longer linked to it."""
        SpotManager.delete(current_user(), spot_id)


@blp.route("/<uuid:spot_id>/shares")
class SpotShares(MethodView):
    @auth_required()
    @blp.arguments(ShareCreateSchema)
    @blp.response(201, SpotShareSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    @blp.alt_response(422, description=NOT_A_CLINICIAN)
    def post(self, body, spot_id: uuid.UUID):
        """Share every result the spot has now with a clinician, one share each (revoked one by one); photos added
        to the spot later are not shared until it is shared again. A result already shared keeps its share."""
        return ShareManager.share_spot(current_user(), spot_id, body["clinician_email"])
