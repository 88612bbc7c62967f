"""The shipped CNNs as the app sees them: one ModelRegistry per app, looked up per modality, described by cards."""

from __future__ import annotations

from flask import Flask, current_app

from cnn_model.modalities import MODALITIES
from cnn_model.runtime import ArtifactError, ModelRegistry, ModelRunner
from utils.errors import ModelUnavailable


class ModelManager:
    @staticmethod
    def init_app(app: Flask) -> None:
        """Give the app its models: the registry of MODEL_DIR, loaded on first use."""
        app.extensions["models"] = ModelRegistry(app.config["MODEL_DIR"])

    @staticmethod
    def _registry() -> ModelRegistry:
        return current_app.extensions["models"]

    @staticmethod
    def runner(modality: str) -> ModelRunner:
        """The model that classifies this modality; ModelUnavailable (503) if none is installed or loadable."""
        try:
            return ModelManager._registry().get(modality)
        except ArtifactError as exc:
            raise ModelUnavailable(
                f"No model is available for {modality} images right now.",
                details={"modality": modality, "installed": list(ModelManager.installed())},
            ) from exc

    @staticmethod
    def installed() -> tuple[str, ...]:
        try:
            return ModelManager._registry().modalities
        except ArtifactError:
            return ()

    @staticmethod
    def cards() -> dict:
        """The model cards of every installed model, and which modalities have none."""
        installed = ModelManager.installed()
        cards = ModelManager._registry().cards() if installed else []
        return {
            "items": cards,
            "total": len(cards),
            "missing_modalities": [m for m in MODALITIES if m not in installed],
        }

    @staticmethod
    def readiness() -> dict:
        """The readiness check for the models: every modality has a verified model loaded."""
        try:
            installed = ModelManager._registry().modalities
        except ArtifactError:
            # The reason (with server paths) is logged when loading fails; /ready is public.
            return {"ok": False, "error": "ArtifactError: model artifacts failed verification"}
        missing = [m for m in MODALITIES if m not in installed]
        if missing:
            return {"ok": False, "error": f"no model for {', '.join(missing)}"}
        return {"ok": True, "error": None}
