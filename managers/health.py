"""Readiness: can this node reach its database and its photo storage, and are its models loaded?"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import text

from db import db
from managers.models import ModelManager
from utils.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class HealthManager:
    @staticmethod
    def liveness() -> dict:
        """The process answers; with the original skin app's keys: model_loaded says the models are in memory.

        Loads the models on first call (lazy elsewhere too); touches neither database nor storage.
        """
        models = ModelManager.loaded_versions()
        if models is None:
            raise ServiceUnavailable(
                "The models could not be loaded.",
                code="models_not_loaded",
                details={"status": "unhealthy", "model_loaded": False},
            )
        return {"status": "healthy", "model_loaded": True, "models": models, "gate": ModelManager.gate_version()}

    @staticmethod
    def readiness() -> dict:
        """{"status": "ready", "checks": {...}}; ServiceUnavailable (503, code not_ready) naming what failed."""
        checks = {
            "database": HealthManager._check_database(),
            "storage": HealthManager._check_storage(),
            "models": ModelManager.readiness(),
        }
        failed = [name for name, check in checks.items() if not check["ok"]]
        if failed:
            raise ServiceUnavailable(
                f"Not ready: {', '.join(failed)} unavailable.",
                code="not_ready",
                details={"status": "not_ready", "checks": checks},
            )
        return {"status": "ready", "checks": checks}

    @staticmethod
    def _check_database() -> dict:
        try:
            db.session.execute(text("SELECT 1"))
            return {"ok": True, "error": None}
        except Exception as exc:
            log.warning("readiness: database check failed: %s", exc)
            db.session.rollback()
            return {"ok": False, "error": type(exc).__name__}

    @staticmethod
    def _check_storage() -> dict:
        storage = current_app.extensions.get("storage")
        if storage is None:
            return {"ok": False, "error": "not configured"}
        try:
            storage.check()
            return {"ok": True, "error": None}
        except Exception as exc:
            log.warning("readiness: storage check failed: %s", exc)
            return {"ok": False, "error": getattr(exc, "code", None) or type(exc).__name__}
