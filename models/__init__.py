"""ORM rows. Every model is imported here so that db.metadata (and Alembic autogenerate) sees them all.

Add a model: a module here using the mixins from models.base, one import line below, then
`flask --app app db migrate -m "..."`, review the script, and `flask --app app db upgrade`.
"""

from models.api_token import ApiToken
from models.audit_event import AuditEvent
from models.base import CreatedAtMixin, TimestampMixin, UTCDateTime, UUIDPrimaryKeyMixin, utcnow
from models.idempotency_key import IdempotencyKey
from models.job import Job, JobItem
from models.prediction import Prediction
from models.prediction_count import PredictionCount
from models.prediction_review import PredictionReview
from models.prediction_share import PredictionShare
from models.revoked_token import RevokedToken
from models.share_link import ShareLink
from models.spot import Spot
from models.user import User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "CreatedAtMixin",
    "IdempotencyKey",
    "Job",
    "JobItem",
    "Prediction",
    "PredictionCount",
    "PredictionReview",
    "PredictionShare",
    "RevokedToken",
    "ShareLink",
    "Spot",
    "TimestampMixin",
    "UTCDateTime",
    "UUIDPrimaryKeyMixin",
    "User",
    "utcnow",
]
