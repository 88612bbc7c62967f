"""/api/v1: the care loop. A patient shares a result with a clinician, or by a link; a clinician reviews what is
shared with them; the report PDF; admins read how often clinicians agreed with each model version."""

import uuid

from flask.views import MethodView

from auth import auth_required, current_user
from constants import Role
from managers.predictions import ImageKind
from managers.reports import ReportManager
from managers.reviews import ReviewManager
from managers.share_links import ShareLinkManager
from managers.shares import ShareManager
from resources.api import Blueprint
from resources.predictions_shared import IMAGE_KIND_DOC, send_image
from schemas.care import (
    NOT_A_CLINICIAN,
    LinkCreateSchema,
    LinkSchema,
    ModelReviewsSchema,
    ReportQuerySchema,
    ReviewCreateSchema,
    ReviewQueueSchema,
    ShareCreateSchema,
    SharedPredictionSchema,
    ShareSchema,
)
from schemas.reviews import ReviewSchema
from utils.responses import pdf_response, share_link_url

blp = Blueprint(
    "care",
    __name__,
    url_prefix="/api/v1",
    description="Share a result with a clinician or by a link, clinicians' reviews, and the report PDF",
)

clinician_required = auth_required(Role.CLINICIAN)
_NOT_YOURS = "No such prediction among the caller's (someone else's is 404 too)"
_NOT_SHARED = "No such prediction shared with the caller now (one not shared, or revoked, is 404 too)"


@blp.route("/predictions/<uuid:prediction_id>/shares")
class Shares(MethodView):
    @auth_required()
    @blp.arguments(ShareCreateSchema)
    @blp.response(201, ShareSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    @blp.alt_response(422, description=NOT_A_CLINICIAN)
    def post(self, body, prediction_id: uuid.UUID):
        """Share one of the caller's results with a clinician (sharing it again gives the same share)."""
        return ShareManager.share(current_user(), prediction_id, body["clinician_email"])

    @auth_required()
    @blp.response(200, ShareSchema(many=True))
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, prediction_id: uuid.UUID):
        """The clinicians one of the caller's results is shared with now."""
        return ShareManager.active_for(current_user(), prediction_id)


@blp.route("/predictions/<uuid:prediction_id>/shares/<uuid:share_id>")
class Share(MethodView):
    @auth_required()
    @blp.response(204)
    @blp.alt_response(404, description="No such share of one of the caller's results")
    def delete(self, prediction_id: uuid.UUID, share_id: uuid.UUID):
        """Stop sharing: the clinician no longer sees the result, from this request on."""
        ShareManager.revoke(current_user(), prediction_id, share_id)


@blp.route("/reviews/queue")
class ReviewQueue(MethodView):
    @clinician_required
    @blp.response(200, ReviewQueueSchema)
    def get(self):
        """Results shared with the calling clinician: unreviewed first, then flagged, then uncertain; oldest first."""
        return {"items": ReviewManager.queue(current_user())}


@blp.route("/reviews/<uuid:prediction_id>")
class SharedPrediction(MethodView):
    @clinician_required
    @blp.response(200, SharedPredictionSchema)
    @blp.alt_response(404, description=_NOT_SHARED)
    def get(self, prediction_id: uuid.UUID):
        """A result shared with the calling clinician (audited)."""
        return ReviewManager.open(current_user(), prediction_id)


@blp.route("/reviews/<uuid:prediction_id>/<any(image, heatmap):kind>")
class SharedPredictionImage(MethodView):
    @clinician_required
    @blp.response(200, content_type="image/*", description=IMAGE_KIND_DOC)
    @blp.alt_response(302, description="Redirect to a short-lived URL of the file in object storage")
    @blp.alt_response(404, description=_NOT_SHARED)
    def get(self, prediction_id: uuid.UUID, kind: ImageKind):
        """The photo or heatmap of a result shared with the calling clinician (audited)."""
        return send_image(ReviewManager.open_image(current_user(), prediction_id, kind))


@blp.route("/predictions/<uuid:prediction_id>/reviews")
class Reviews(MethodView):
    @clinician_required
    @blp.arguments(ReviewCreateSchema)
    @blp.response(201, ReviewSchema)
    @blp.alt_response(404, description=_NOT_SHARED)
    def post(self, body, prediction_id: uuid.UUID):
        """Record the calling clinician's verdict on a result shared with them (audited)."""
        return ReviewManager.record(current_user(), prediction_id, body["verdict"], body["finding"], body["comment"])


@blp.route("/models/<modality>/reviews")
class ModelReviews(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(200, ModelReviewsSchema)
    @blp.alt_response(404, description="No such modality")
    def get(self, modality: str):
        """How often clinicians agreed with each version of a modality's model: the ground truth of drift."""
        return {"modality": modality, "versions": ReviewManager.agreement(modality)}


@blp.route("/predictions/<uuid:prediction_id>/report.pdf")
class Report(MethodView):
    @auth_required()
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, content_type="application/pdf", description="One A4 page")
    @blp.alt_response(404, description=_NOT_YOURS)
    def get(self, query, prediction_id: uuid.UUID):
        """A one-page report of one of the caller's results, to take to a doctor (times in ?tz=, else UTC)."""
        return pdf_response(ReportManager.for_owner(current_user(), prediction_id, query["zone"]), prediction_id)


@blp.route("/predictions/<uuid:prediction_id>/links")
class Links(MethodView):
    @auth_required()
    @blp.arguments(LinkCreateSchema)
    @blp.response(201, LinkSchema)
    @blp.alt_response(404, description=_NOT_YOURS)
    def post(self, body, prediction_id: uuid.UUID):
        """A link to this one result for a doctor without an account (read-only, until it expires or is revoked)."""
        made = ShareLinkManager.create(current_user(), prediction_id, body["expires_in_days"])
        link = made.link
        return {
            "id": link.id,
            "url": share_link_url(made.token),
            "expires_at": link.expires_at,
            "created_at": link.created_at,
        }

    @auth_required()
    @blp.response(200, LinkSchema(many=True))
    def get(self, prediction_id: uuid.UUID):
        """The caller's links to this result that still open (their URLs are not kept, so not shown)."""
        return [active.link for active in ShareLinkManager.active_for(current_user(), prediction_id)]


@blp.route("/predictions/<uuid:prediction_id>/links/<uuid:link_id>")
class Link(MethodView):
    @auth_required()
    @blp.response(204)
    @blp.alt_response(404, description="No such link to one of the caller's results")
    def delete(self, prediction_id: uuid.UUID, link_id: uuid.UUID):
        """Revoke a link: it answers 410 from this request on."""
        ShareLinkManager.revoke(current_user(), prediction_id, link_id)
