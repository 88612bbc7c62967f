"""Serving: load each exported model once, verify it, and run it on the LiteRT interpreter.

No TensorFlow here. LiteRT interpreters are not thread-safe, so each call borrows one from a
pool that grows to the peak number of concurrent calls; a pool rather than one per thread,
because servers that start a thread per request would otherwise build one for every request.
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .card import ARTIFACTS_DIR, CARD_FILE, MODEL_FILE, ArtifactError, ModelCard
from .conformal import PredictionSets, certainty_of
from .decision import DecisionPolicy, positive_indices
from .gate import GATE_DIR_NAME, ModalityGate
from .interpreter import InterpreterPool, LiteInterpreter
from .modalities import SPECS, get_spec
from .preprocessing import ImageSource, load_image, preprocess_for_model
from .specs import ModalitySpec

HEATMAP_MAX_SIDE = 512

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    modality: str
    label: str
    display_name: str
    confidence: float
    probabilities: dict[str, float]
    is_positive: bool  # by the card's decision rule (cnn_model.decision), not necessarily the label's class
    positive_flag: str  # "is_malignant" or "is_abnormal"
    positive_probability: float  # summed probability of the malignant/abnormal classes
    activation_map: ActivationMap | None = None  # where the model looked for its label, if asked for
    # The findings the model cannot rule out at set_coverage (cnn_model.conformal), most probable first, and
    # "clear" (one) or "uncertain" (more); None where the card has no prediction sets.
    prediction_set: tuple[str, ...] | None = None
    set_coverage: float | None = None
    certainty: str | None = None


class ModelRunner:
    """One modality's exported model with its card."""

    def __init__(self, artifact_dir: Path, num_threads: int = 1):
        artifact_dir = Path(artifact_dir)
        card_path, model_path = artifact_dir / CARD_FILE, artifact_dir / MODEL_FILE
        if not card_path.is_file() or not model_path.is_file():
            raise ArtifactError(f"{artifact_dir}: needs {CARD_FILE} and {MODEL_FILE}")
        self.card = ModelCard.load(card_path)
        self._model_bytes = model_path.read_bytes()
        actual = hashlib.sha256(self._model_bytes).hexdigest()
        expected = self.card.artifact.sha256
        if actual != expected:
            raise ArtifactError(
                f"{model_path}: sha256 {actual} does not match its card ({expected}); "
                f"refusing to serve an artifact that is not the one that was evaluated"
            )
        spec = get_spec(self.card.modality)
        if self.card.class_names != spec.class_names:
            raise ArtifactError(
                f"{artifact_dir}: card classes {list(self.card.class_names)} differ from the spec "
                f"{list(spec.class_names)}"
            )
        # The card, written at export, knows the input size and resize rule the network was trained
        # with; serving follows it, so a later change to the spec cannot silently skew a shipped model.
        card_input = self.card.input
        self.spec: ModalitySpec = replace(
            spec,
            input_size=card_input.size,
            resize_mode=card_input.resize_mode,
            input_mask=tuple(card_input.mask) if card_input.mask else None,
        )
        self.decision = DecisionPolicy.from_card(self.card, self.spec)
        self.sets = PredictionSets.from_card(self.card, self.spec)
        self.sha256 = actual
        self.num_threads = num_threads
        self._interpreters = InterpreterPool(lambda: LiteInterpreter(self._model_bytes, num_threads))

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def run(self, batch: np.ndarray, *, with_cams: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Served class probabilities (after the card's prevalence correction, if any) and
        class activation maps for a preprocessed batch."""
        probabilities, cams = self.network_run(batch, with_cams=with_cams)
        return self.decision.adjust(probabilities), cams

    def network_run(self, batch: np.ndarray, *, with_cams: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The network's own probabilities (before the card's temperature and prevalence correction) and CAMs."""
        with self._interpreters.borrow() as interpreter:
            return interpreter.run(batch, with_cams=with_cams)

    def predict(self, source: ImageSource, *, heatmap: bool = False) -> Prediction:
        return self.predict_batch([source], heatmap=heatmap)[0]

    def predict_batch(self, sources: Sequence[ImageSource], *, heatmap: bool = False) -> list[Prediction]:
        """predict() for several images at once, with the same answers: one interpreter borrowed for all of them
        and the decision rule applied to all rows together (batch scoring)."""
        if not sources:
            return []
        x = np.stack([preprocess_for_model(load_image(source), self.spec) for source in sources])
        probabilities, cams = self.run(x, with_cams=heatmap)
        positive = self.decision.positive(probabilities, self.spec)
        positive_probability = probabilities[:, positive_indices(self.spec)].sum(axis=-1)
        return [
            self._prediction(
                p, bool(positive[i]), float(positive_probability[i]), cams[i] if heatmap and cams is not None else None
            )
            for i, p in enumerate(probabilities)
        ]

    def _prediction(
        self, p: np.ndarray, is_positive: bool, positive_probability: float, cam: np.ndarray | None
    ) -> Prediction:
        top = int(p.argmax())
        class_spec = self.spec.classes[top]
        activation_map = ActivationMap.of(cam[:, :, top], self.spec.resize_mode) if cam is not None else None
        prediction_set = tuple(self.sets.prediction_set(p, self.spec.class_names)) if self.sets else None
        return Prediction(
            modality=self.spec.name,
            label=class_spec.name,
            display_name=class_spec.display_name,
            confidence=float(p[top]),
            probabilities={c: float(v) for c, v in zip(self.spec.class_names, p, strict=True)},
            is_positive=is_positive,
            positive_flag=self.spec.positive_flag,
            positive_probability=positive_probability,
            activation_map=activation_map,
            prediction_set=prediction_set,
            set_coverage=self.sets.coverage if self.sets else None,
            certainty=certainty_of(prediction_set) if prediction_set else None,
        )


@dataclass(frozen=True)
class ActivationMap:
    """The predicted class's activation map on the network's last feature grid (a few cells a side).

    A few dozen bytes (to_bytes) that can be kept with a prediction, and rendered over the photo into the
    heatmap PNG (render) only when someone looks at it.
    """

    grid: np.ndarray  # (rows, columns) float16 in 0..1: the class activation map, negative parts cut, peak 1
    resize_mode: str  # how the image was fitted to the network's square input: "stretch" or "pad"

    _HEADER = struct.Struct("<cBB")  # resize mode initial, rows, columns; then the grid as float16
    _MODES = {b"s": "stretch", b"p": "pad"}

    @classmethod
    def of(cls, cam: np.ndarray, resize_mode: str) -> ActivationMap:
        cam = np.maximum(np.asarray(cam, dtype=np.float32), 0)
        peak = float(cam.max())
        return cls((cam / peak if peak > 0 else cam).astype(np.float16), resize_mode)

    def to_bytes(self) -> bytes:
        rows, columns = self.grid.shape
        return self._HEADER.pack(self.resize_mode[:1].encode(), rows, columns) + self.grid.astype("<f2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ActivationMap:
        mode, rows, columns = cls._HEADER.unpack_from(data)
        grid = np.frombuffer(data, dtype="<f2", offset=cls._HEADER.size, count=rows * columns)
        return cls(grid.reshape(rows, columns).astype(np.float16), cls._MODES[mode])

    def on_grid(self, width: int, height: int) -> np.ndarray:
        """The map upsampled (bilinear) onto an image of width x height pixels: (height, width) float32 in 0..1.

        Laid out as the model saw the image: a padded input's map is cut back to the image's box first.
        """
        cam = Image.fromarray(self.grid.astype(np.float32), mode="F")
        if self.resize_mode == "pad":
            side = max(width, height)
            cam = cam.resize((side, side), Image.Resampling.BILINEAR)
            left, top = (side - width) // 2, (side - height) // 2
            cam = cam.crop((left, top, left + width, top + height))
        return np.clip(np.asarray(cam.resize((width, height), Image.Resampling.BILINEAR)), 0.0, 1.0)

    def render(self, source: ImageSource) -> bytes:
        """The map laid over the image (at most HEATMAP_MAX_SIDE pixels a side), warm where the model looked, as PNG."""
        image = load_image(source)
        if max(image.size) > HEATMAP_MAX_SIDE:
            image = image.copy()
            image.thumbnail((HEATMAP_MAX_SIDE, HEATMAP_MAX_SIDE), Image.Resampling.BILINEAR)
        image = image.convert("RGB")
        cam = Image.fromarray((self.grid.astype(np.float32) * 255).astype(np.uint8), mode="L")
        if self.resize_mode == "pad":
            # The model saw the image letterboxed into a square: cut the map back to the image's box.
            side = max(image.size)
            cam = cam.resize((side, side), Image.Resampling.BILINEAR)
            left, top = (side - image.width) // 2, (side - image.height) // 2
            cam = cam.crop((left, top, left + image.width, top + image.height))
        cam = cam.resize(image.size, Image.Resampling.BILINEAR)
        heat = Image.fromarray(_JET[np.asarray(cam)], mode="RGB")
        # Blend weight 0.15 where the model did not look, up to 0.6 at the peak.
        weight = cam.point(_BLEND_WEIGHT)
        buffer = io.BytesIO()
        # Fast zlib level: a heatmap is rendered once and viewed once or twice, so encode time matters more.
        Image.composite(heat, image, weight).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


def _colormap(values: np.ndarray) -> np.ndarray:
    """A blue -> green -> yellow -> red ramp (jet-like), values in 0..1 -> RGB 0..255."""
    r = np.clip(1.5 - np.abs(4 * values - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * values - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * values - 1), 0, 1)
    return np.stack([r, g, b], axis=-1) * 255.0


# The colour ramp and the blend weight for each of the 256 levels of a map, computed once.
_JET = np.round(_colormap(np.arange(256, dtype=np.float32) / 255.0)).astype(np.uint8)
_BLEND_WEIGHT = [round((0.45 * level / 255.0 + 0.15) * 255) for level in range(256)]


class ModelRegistry:
    """The models installed in one artifacts folder, for every registered modality, loaded together on first use.

    Lazy, so that CLI commands and migrations never pay for loading models; once loaded, every caller shares
    the runners (they are thread-safe). Loading fails as a whole when one artifact fails verification, and
    stays failed: the files on disk are wrong until they are replaced and the process restarts.
    """

    def __init__(self, artifacts_dir: str | Path = ARTIFACTS_DIR, num_threads: int = 1) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._runners: dict[str, ModelRunner] | None = None
        self._gate: ModalityGate | None = None
        self._error: ArtifactError | None = None

    def _loaded(self) -> dict[str, ModelRunner]:
        if self._runners is None and self._error is None:
            with self._lock:
                if self._runners is None and self._error is None:
                    try:
                        self._runners = {
                            m: ModelRunner(self.artifacts_dir / m, num_threads=self.num_threads)
                            for m in SPECS
                            if (self.artifacts_dir / m / CARD_FILE).is_file()
                        }
                        self._gate = self._load_gate()
                        log.info("models loaded from %s: %s", self.artifacts_dir, ", ".join(self._runners))
                    except ArtifactError as exc:
                        log.error("models could not be loaded from %s: %s", self.artifacts_dir, exc)
                        self._error = exc
        if self._error is not None:
            raise self._error
        return self._runners

    def _load_gate(self) -> ModalityGate | None:
        gate_dir = self.artifacts_dir / GATE_DIR_NAME
        return ModalityGate(gate_dir, num_threads=self.num_threads) if (gate_dir / CARD_FILE).is_file() else None

    @property
    def gate(self) -> ModalityGate | None:
        """The modality gate, or None where the folder ships none."""
        self._loaded()
        return self._gate

    def get(self, modality: str) -> ModelRunner:
        """The modality's runner; ArtifactError if it has none or the folder failed to load."""
        try:
            return self._loaded()[modality]
        except KeyError:
            raise ArtifactError(f"no model is installed for modality {modality!r}") from None

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities with a loaded model; ArtifactError if the folder failed to load."""
        return tuple(self._loaded())

    def cards(self) -> list[ModelCard]:
        return [runner.card for runner in self._loaded().values()]
