"""The shipped CNNs as the app sees them: one ModelRegistry per app, looked up per modality, described by cards."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask, current_app
from PIL import Image

from cnn_model.card import ModelCard
from cnn_model.gate import GATE_DIR_NAME, FeatureNetwork, GateResult
from cnn_model.lesion_match import LESION_MATCH_FILE, LesionMatcher
from cnn_model.modalities import MODALITIES, get_spec
from cnn_model.quality import measure, read_limits
from cnn_model.runtime import ArtifactError, ModelRegistry, ModelRunner
from cnn_model.runtime import Prediction as RunnerPrediction
from services import metrics
from utils.errors import ImageQuality, ModalityMismatch, ModelUnavailable, NotAMedicalImage

# What a person can do about each capture problem (cnn_model.quality.REASONS).
RETAKE_ADVICE = {
    "too_small": "The image is too small to read: send one at least {min_side} pixels on its shorter side.",
    "too_dark": "The image is too dark to read: retake it in good, even light.",
    "too_bright": "The image is overexposed: retake it without a flash or strong light falling straight on it.",
    "low_contrast": "The image is washed out (too little contrast): retake it in even light, without glare or haze.",
    "blurry": "The image is too blurred to read: hold the camera still and let it focus before you take the picture.",
}


@dataclass(frozen=True)
class ModalityChoice:
    """Which model reads an upload, and whether the gate chose it (True) or the client named it (False)."""

    modality: str
    detected: bool


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
    def input_size(modality: str | None) -> int | None:
        """The side in pixels of the square image the modality's model reads (where the gate is to choose the
        modality, the largest any installed model reads); None when no such model is loaded."""
        try:
            registry = ModelManager._registry()
            names = registry.modalities if modality is None else (modality,)
            return max((registry.get(name).spec.input_size for name in names), default=None)
        except ArtifactError:
            return None

    @staticmethod
    def detect_modalities(declared: str | None, images: Sequence[Image.Image]) -> list[GateResult | None]:
        """The gate's answers for several images at once, to hand to choose_modality one by one (batch scoring);
        None for each where choose_modality would not ask the gate."""
        gate = ModelManager._gate()
        if gate is None or (declared is not None and declared not in gate.modalities):
            return [None] * len(images)
        return gate.detect_batch(images)

    @staticmethod
    def choose_modality(declared: str | None, image: Image.Image, detected: GateResult | None = None) -> ModalityChoice:
        """The modality an upload is read as: the gate's answer where none is declared, else the declared one
        once the gate agrees. An image of none of our kinds is refused either way.

        A declared modality the gate was not fitted on (one registered after it) is taken as declared: the
        gate cannot judge it. Without a shipped gate, declared modalities are taken as they are and
        detection is unavailable (503). detected: the gate's answer for image where it was already asked
        (detect_modalities).
        """
        gate = ModelManager._gate()
        if gate is None or (declared is not None and declared not in gate.modalities):
            if declared is None:
                raise ModelUnavailable(
                    "Automatic detection of the kind of image is not available here; name the modality.",
                    details={"modalities": list(MODALITIES)},
                )
            return ModalityChoice(declared, detected=False)
        result = detected if detected is not None else gate.detect(image)
        if result.modality is None:
            # A kind with a narrow input (dermatoscope photos, not any photo of the skin) says what it reads.
            told = get_spec(declared).advice.not_recognised if declared is not None else None
            raise NotAMedicalImage(
                f"{told} This image was not recognised as one, so it was not classified."
                if told
                else "The image does not look like any kind of medical image MedSight reads "
                f"({', '.join(get_spec(m).display_name for m in gate.modalities)}).",
                details={"scores": result.scores},
            )
        if declared is None:
            return ModalityChoice(result.modality, detected=True)
        if declared != result.modality:
            raise ModalityMismatch(
                f"The image looks like another kind: {get_spec(result.modality).display_name}, "
                f"rather than {get_spec(declared).display_name}.",
                details={"declared": declared, "detected": result.modality, "scores": result.scores},
            )
        return ModalityChoice(declared, detected=False)

    @staticmethod
    def check_capture(modality: str, image: Image.Image, short_side: int) -> None:
        """Refuse (422 image_quality) an image too blurred, dark, bright, flat or small for the modality's model:
        it would be classified as confidently as a good one. short_side: the upload's own, before any draft."""
        reason = ModelManager.capture_problem(modality, image, short_side)
        if reason is not None:
            metrics.record_quality_refusal(modality, reason)
            raise ImageQuality(
                ModelManager.retake_advice(modality, reason), details={"reason": reason, "modality": modality}
            )

    @staticmethod
    def capture_problem(modality: str, image: Image.Image, short_side: int) -> str | None:
        """What makes the image too poor for the modality's model to read (cnn_model.quality.REASONS), or None."""
        limits = read_limits(current_app.config["MODEL_DIR"], modality)
        return None if limits is None else limits.problem(measure(image, short_side=short_side))

    @staticmethod
    def retake_advice(modality: str, reason: str) -> str:
        limits = read_limits(current_app.config["MODEL_DIR"], modality)
        return RETAKE_ADVICE[reason].format(min_side=limits.min_short_side if limits else 0)

    @staticmethod
    def _gate():
        try:
            return ModelManager._registry().gate
        except ArtifactError as exc:
            raise ModelUnavailable("The models are not available right now.") from exc

    @staticmethod
    def loaded_versions() -> dict[str, str] | None:
        """Modality -> version of every loaded model; None when the models failed to load."""
        try:
            return {m: ModelManager._registry().get(m).version for m in ModelManager._registry().modalities}
        except ArtifactError:
            return None

    @staticmethod
    def served_models() -> list[tuple[str, str, str]]:
        """(modality, version, sha256) of every loaded model, the gate's as modality "gate"; empty if none load."""
        try:
            registry = ModelManager._registry()
            served = [(m, registry.get(m).version, registry.get(m).sha256) for m in registry.modalities]
            gate = registry.gate
        except ArtifactError:
            return []
        if gate is not None:
            served.append(("gate", gate.version, ""))
        return served

    @staticmethod
    def run(runner: ModelRunner, image: Image.Image, *, heatmap: bool = False) -> RunnerPrediction:
        """Classify image with runner, timed and counted for the metrics (per modality, version and label)."""
        started = time.perf_counter()
        result = runner.predict(image, heatmap=heatmap)
        metrics.observe_inference(result.modality, runner.version, result.label, time.perf_counter() - started)
        return result

    @staticmethod
    def run_batch(
        runner: ModelRunner, images: Sequence[Image.Image], *, heatmap: bool = False
    ) -> list[RunnerPrediction]:
        """run() for several images of runner's modality at once (batch scoring); each counted with its share of
        the time."""
        started = time.perf_counter()
        results = runner.predict_batch(images, heatmap=heatmap)
        share = (time.perf_counter() - started) / max(len(results), 1)
        for result in results:
            metrics.observe_inference(result.modality, runner.version, result.label, share)
        return results

    @staticmethod
    def lesion_matcher(modality: str) -> LesionMatcher | None:
        """The same-lesion distance for photos of this modality, where one is shipped with the gate; else None."""
        matchers = current_app.extensions.setdefault("lesion_matchers", {})
        if "loaded" not in matchers:
            gate = ModelManager._gate()
            path = ModelManager._registry().artifacts_dir / GATE_DIR_NAME / LESION_MATCH_FILE
            matcher = LesionMatcher.load(path) if gate is not None and path.is_file() else None
            matchers["loaded"] = {matcher.modality: matcher} if matcher is not None else {}
        return matchers["loaded"].get(modality)

    @staticmethod
    def gate_network() -> FeatureNetwork:
        """The gate's feature network, which the same-lesion distance reads (only asked where a gate is shipped)."""
        return ModelManager._gate().network

    @staticmethod
    def gate_version() -> str | None:
        try:
            gate = ModelManager._registry().gate
        except ArtifactError:
            return None
        return gate.version if gate is not None else None

    @staticmethod
    def installed() -> tuple[str, ...]:
        try:
            return ModelManager._registry().modalities
        except ArtifactError:
            return ()

    @staticmethod
    def model_cards() -> list[ModelCard]:
        """The card of every installed model (none where the models failed to load)."""
        return ModelManager._registry().cards() if ModelManager.installed() else []

    @staticmethod
    def cards() -> dict:
        """The model cards of every installed model (ModelCard), and which modalities have none."""
        installed = ModelManager.installed()
        cards = ModelManager.model_cards()
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
