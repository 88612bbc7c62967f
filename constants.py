"""Values fixed by the domain, named once and referenced everywhere else.

Modalities and their classes are defined by their specs, one module each in cnn_model/modalities/.
"""

from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    ADMIN = "admin"
    # Reviews results that patients share with them; sees nothing else of anyone.
    CLINICIAN = "clinician"


class TokenScope(StrEnum):
    """What a personal access token may do: read (GET/HEAD) and/or write (everything else)."""

    READ = "read"
    WRITE = "write"


class AuditAction(StrEnum):
    REGISTER = "auth.register"
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    PASSWORD_CHANGE = "auth.password_change"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    USER_CREATE_ADMIN = "user.create_admin"
    USER_SET_ROLE = "user.set_role"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    PREDICTION_CREATE = "prediction.create"
    PREDICTION_DELETE = "prediction.delete"
    # A person's own data: exported (by themselves or an admin), or the whole account deleted.
    ACCOUNT_EXPORT = "account.export"
    ACCOUNT_DELETE = "account.delete"
    # Admin reads of other people's records: each one leaves a trace of who looked.
    PREDICTION_READ = "prediction.read"
    ADMIN_LIST_PREDICTIONS = "admin.predictions.list"
    ADMIN_LIST_USERS = "admin.users.list"
    ADMIN_READ_USER = "admin.users.read"
    ADMIN_READ_AUDIT = "admin.audit.read"
    ADMIN_EXPORT_AUDIT = "admin.audit.export"
    # Batch jobs: submitted, cancelled (with or without their predictions), and admins' reads of others' jobs.
    JOB_CREATE = "job.create"
    JOB_CANCEL = "job.cancel"
    JOB_READ = "job.read"
    ADMIN_LIST_JOBS = "admin.jobs.list"
    # The care loop: a result shared with a clinician, opened and reviewed by them; links for a doctor
    # without an account, made, revoked and opened (an open records no address: the patient sees it).
    SHARE_CREATE = "share.create"
    SHARE_REVOKE = "share.revoke"
    REVIEW_OPEN = "review.open"
    REVIEW_CREATE = "review.create"
    SHARE_LINK_CREATE = "share_link.create"
    SHARE_LINK_REVOKE = "share_link.revoke"
    SHARE_LINK_OPEN = "share_link.open"
    SHARE_LINK_IMAGE = "share_link.image"
    # Spots: renamed, or deleted (their photos stay, unlinked).
    SPOT_RENAME = "spot.rename"
    SPOT_DELETE = "spot.delete"


# An admin's record page asks for the photo and heatmap right after it: within this long of the record's read
# they are part of that read, not new ones, in the audit trail (the pages only; the API records each).
PAGE_READ_WINDOW_SECONDS = 10 * 60

# Accounts
EMAIL_MAX_LENGTH = 254
FULL_NAME_MAX_LENGTH = 120
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
# The least zxcvbn score (0-4) a password needs: 3 means about 10^8 guesses or more, "safely unguessable".
PASSWORD_MIN_SCORE = 3

# Personal access tokens look like "msk_<prefix>_<secret>"; the prefix is kept in clear for display.
PAT_MARKER = "msk"
PAT_PREFIX_BYTES = 4
PAT_SECRET_BYTES = 32
PAT_NAME_MAX_LENGTH = 100
PAT_MAX_LIFETIME_DAYS = 365
# Writing last_used_at on every request would make each read a write; once a minute is plenty.
PAT_LAST_USED_RESOLUTION_SECONDS = 60

# JSON request bodies are small; anything bigger than this is refused before it is parsed.
JSON_BODY_MAX_BYTES = 64 * 1024

# Predictions
PREDICTION_NOTE_MAX_LENGTH = 500
# The longest Idempotency-Key header an upload may carry.
IDEMPOTENCY_KEY_MAX_LENGTH = 255
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100
# Deeper than any real list; keeps page * per_page an OFFSET every database accepts.
PAGE_NUMBER_MAX = 1_000_000
# Storage key prefixes; the rest of each key is random (Storage.new_key).
PHOTO_KEY_PREFIX = "photos"
HEATMAP_KEY_PREFIX = "heatmaps"
# A DICOM upload's file, de-identified, kept beside its PNG preview (the photo).
ORIGINAL_KEY_PREFIX = "originals"
HEATMAP_CONTENT_TYPE = "image/png"
# A photo's square thumbnail for the history, drawn on first view and kept beside it (at the photo's key under
# this prefix): twice the list's 72 CSS pixels for sharp screens, a few KB of JPEG.
THUMBNAIL_KEY_PREFIX = "thumbnails"
THUMBNAIL_CONTENT_TYPE = "image/jpeg"
THUMBNAIL_SIDE = 144
THUMBNAIL_QUALITY = 72
# How long a browser may keep a thumbnail in its private cache: the photo behind it never changes.
THUMBNAIL_CACHE_SECONDS = 7 * 24 * 3600
# The long side of a stored photo at most: room to look closely beside a heatmap of at most 512 pixels a side,
# and what an upload is decoded at before anything else is made of it (utils.images).
STORED_PHOTO_MAX_SIDE = 2048
# How long a presigned storage URL handed out by the image/heatmap endpoints stays valid.
IMAGE_URL_TTL_SECONDS = 120
PREDICTION_DISCLAIMER = (
    "This result comes from an automated image classifier and is not a diagnosis; "
    "consult a qualified clinician about any health concern."
)
# The same notice for pages that show no result (home, footer).
# Who can see a person's results, said the same way wherever the pages say it.
PRIVACY_NOTE = (
    "Your results, photos and notes are private: you can see them, and so can MedSight's administrators, "
    "who look only when needed; every time one of them opens a result it is recorded. No one else can see them."
)
SERVICE_DISCLAIMER = (
    "MedSight's results come from automated image classifiers and are not a diagnosis; "
    "consult a qualified clinician about any health concern."
)

# The modality value that asks the modality gate to say what kind of image an upload is.
AUTO_MODALITY = "auto"


# Batch jobs (an archive of images, or several files, scored by workers into ordinary predictions)
class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class JobItemStatus(StrEnum):
    PENDING = "pending"
    SCORED = "scored"
    FAILED = "failed"


# Where the chunks of a job wait for a worker: small stored zips of the entries to score.
JOB_CHUNK_KEY_PREFIX = "jobs"
JOB_CHUNK_CONTENT_TYPE = "application/zip"
# The longest archive entry name kept (longer names are cut, keeping their end, which says most).
JOB_ITEM_NAME_MAX_LENGTH = 512
JOB_NOTE_MAX_LENGTH = PREDICTION_NOTE_MAX_LENGTH
# The name Celery knows the chunk task by; web nodes send it by name without importing the worker code.
SCORE_CHUNK_TASK = "medsight.jobs.score_chunk"


# The care loop: a clinician's verdict on a shared result (IHE AI Result Assessment: accept, reject, amend).
class ReviewVerdict(StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    AMEND = "amend"


REVIEW_FINDING_MAX_LENGTH = 120
REVIEW_COMMENT_MAX_LENGTH = 1000
# Links to one result for a doctor without an account: random tokens, of which only a hash is kept.
SHARE_LINK_TOKEN_BYTES = 32
SHARE_LINK_DAYS_DEFAULT = 7
SHARE_LINK_DAYS_MAX = 30
# Opening links, per client address: a person reads a page and its images, a guesser is slowed to nothing.
SHARE_LINK_RATE_LIMIT = "60 per minute"

# Spots: one lesion (or one body part) an account follows over time, named by its owner.
SPOT_NAME_MAX_LENGTH = 80
# Where on the body a spot is: HAM10000's localisations, the sites the skin model's photos were taken at.
BODY_SITES = (
    "scalp",
    "face",
    "ear",
    "neck",
    "chest",
    "abdomen",
    "back",
    "trunk",
    "upper extremity",
    "hand",
    "lower extremity",
    "foot",
    "genital",
)
