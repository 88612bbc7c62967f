"""The Celery app for `celery -A make_celery worker`: MedSight's app, built from the environment.

CELERY_BROKER_URL must be set (with the same DATABASE_URL and storage settings as the web nodes).
"""

from app import create_app
from config import ConfigError

flask_app = create_app()
celery_app = flask_app.extensions.get("celery")
if celery_app is None:
    raise ConfigError("CELERY_BROKER_URL must be set to run Celery workers")
