"""The shipped CNNs as the app sees them: loaded once per process, looked up per modality, described by cards."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import current_app

from cnn_model.runtime import ArtifactError, ModelRegistry, ModelRunner
from cnn_model.specs import MODALITIES
from utils.errors import ModelUnavailable

log = logging.getLogger(__name__)


class ModelCatalog:
    """The app's one ModelRegistry, loaded on first use.

    Lazy so that CLI commands and migrations never pay for loading models; once loaded, every
    request shares it (runners are thread-safe). A registry that fails to load (an artifact whose
    hash does not match its card) stays failed until restart: the artifacts on disk are wrong.
    """

    def __init__(self, artifacts_dir: str | Path, num_threads: int = 1) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._registry: ModelRegistry | None = None
        self._error: ArtifactError | None = None

    def registry(self) -> ModelRegistry:
        """The loaded registry; ArtifactError if the artifacts could not be loaded."""
        if self._registry is None and self._error is None:
            with self._lock:
                if self._registry is None and self._error is None:
                    try:
                        self._registry = ModelRegistry(self.artifacts_dir, MODALITIES, num_threads=self.num_threads)
                        log.info("models loaded from %s: %s", self.artifacts_dir, ", ".join(self._registry.modalities))
                    except ArtifactError as exc:
                        log.error("models could not be loaded from %s: %s", self.artifacts_dir, exc)
                        self._error = exc
        if self._error is not None:
            raise self._error
        return self._registry


class ModelManager:
    @staticmethod
    def _catalog() -> ModelCatalog:
        return current_app.extensions["models"]

    @staticmethod
    def runner(modality: str) -> ModelRunner:
        """The model that classifies this modality; ModelUnavailable (503) if none is installed or loadable."""
        try:
            return ModelManager._catalog().registry().get(modality)
        except ArtifactError as exc:
            raise ModelUnavailable(
                f"No model is available for {modality} images right now.",
                details={"modality": modality, "installed": list(ModelManager.installed())},
            ) from exc

    @staticmethod
    def installed() -> tuple[str, ...]:
        try:
            return ModelManager._catalog().registry().modalities
        except ArtifactError:
            return ()

    @staticmethod
    def cards() -> dict:
        """The model cards of every installed model, and which modalities have none."""
        installed = ModelManager.installed()
        cards = ModelManager._catalog().registry().cards() if installed else []
        return {
            "items": cards,
            "total": len(cards),
            "missing_modalities": [m for m in MODALITIES if m not in installed],
        }

    @staticmethod
    def readiness() -> dict:
        """The readiness check for the models: every modality has a verified model loaded."""
        try:
            installed = ModelManager._catalog().registry().modalities
        except ArtifactError:
            # The reason (with server paths) is logged when loading fails; /ready is public.
            return {"ok": False, "error": "ArtifactError: model artifacts failed verification"}
        missing = [m for m in MODALITIES if m not in installed]
        if missing:
            return {"ok": False, "error": f"no model for {', '.join(missing)}"}
        return {"ok": True, "error": None}
