"""Transfer-learning training of one modality's CNN (TensorFlow/Keras; not used when serving)."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..data import load_arrays
from ..metrics import balanced_accuracy, macro_ovr_auc
from ..specs import ModalitySpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


@dataclass
class TrainingConfig:
    head_epochs: int = 2
    finetune_epochs: int = 10
    batch_size: int = 32
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 2e-4
    dropout: float = 0.3
    class_weight_power: float = 0.5  # 1.0 = fully balanced, 0.0 = none; sqrt keeps the majority class honest
    # Logit-adjusted loss (Menon et al., 2021) instead of class weights: the loss sees the network's logits
    # plus tau * log(training prior), so the network itself learns the prior-free (balanced) posterior.
    # For the prevalence correction this is the same as class weights of power tau, which is what is recorded.
    logit_adjustment: float = 0.0
    patience: int = 4
    input_size: int | None = None  # overrides the spec (the tiny test run uses this)
    input_mask: tuple[float, float, float, float] | None = None  # overrides the spec's (an experiment's knob)
    seed: int = 42
    backbone_path: str | None = None  # None or missing file: a compact CNN trained from scratch
    # Cut the pretrained backbone at this layer (None: use it whole). Ending at block6d keeps
    # 2.4M of Lite0's 3.4M parameters, so the model fits 5 MB with float16 weights where int8
    # rounding flips too many fine-grained decisions.
    feature_layer: str | None = None
    # False: train the full epoch budget and keep the last weights, so val stays unseen by every
    # choice (used when the final model is refit on all of train/ with a schedule checked earlier).
    select_on_val: bool = True


def _augmenter(spec: ModalitySpec, seed: int) -> keras.Sequential:
    aug = spec.augmentation
    layers = []
    if aug.get("flip"):
        layers.append(keras.layers.RandomFlip(aug["flip"], seed=seed))
    if aug.get("rotation"):
        layers.append(keras.layers.RandomRotation(aug["rotation"], fill_mode="reflect", seed=seed))
    if aug.get("zoom"):
        layers.append(keras.layers.RandomZoom((-aug["zoom"], aug["zoom"]), fill_mode="reflect", seed=seed))
    if aug.get("translation"):
        t = aug["translation"]
        layers.append(keras.layers.RandomTranslation(t, t, fill_mode="reflect", seed=seed))
    if aug.get("contrast"):
        layers.append(keras.layers.RandomContrast(aug["contrast"], value_range=(0, 255), seed=seed))
    if aug.get("brightness"):
        layers.append(keras.layers.RandomBrightness(aug["brightness"], value_range=(0, 255), seed=seed))
    if aug.get("saturation"):  # stain and camera colour vary between batches
        s = aug["saturation"]
        layers.append(keras.layers.RandomSaturation((0.5 - s, 0.5 + s), value_range=(0, 255), seed=seed))
    if aug.get("hue"):
        layers.append(keras.layers.RandomHue(aug["hue"], value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")


def build_classifier(spec: ModalitySpec, config: TrainingConfig) -> tuple[keras.Model, keras.Model]:
    """(classifier, backbone): backbone -> global average pooling -> dropout -> dense logits -> softmax.

    That head shape is what makes a class activation map a weighted sum of the last feature maps.
    """
    size = config.input_size or spec.input_size
    n_classes = len(spec.classes)
    if config.backbone_path and Path(config.backbone_path).is_file():
        backbone = keras.models.load_model(config.backbone_path, compile=False)
        if config.feature_layer:
            backbone = keras.Model(backbone.input, backbone.get_layer(config.feature_layer).output)
    else:
        backbone = _compact_backbone()
    backbone.name = "backbone"  # export finds it by this name
    inputs = keras.Input((size, size, 3), name="image")
    features = backbone(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    dropped = keras.layers.Dropout(config.dropout, name="dropout")(pooled)
    # Zero-initialised: the pooled features of a cut backbone have norms near 40, so a random head
    # starts with logits in the tens, and its first epochs thrash instead of fitting.
    logits = keras.layers.Dense(n_classes, kernel_initializer="zeros", name="logits")(dropped)
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name=f"{spec.name}_classifier"), backbone


def _compact_backbone() -> keras.Model:
    """A small from-scratch CNN for when no pretrained backbone is available (and for tests)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU(max_value=6)(x)
    return keras.Model(inputs, x, name="compact_backbone")


def _set_backbone_trainable(backbone: keras.Model, trainable: bool) -> None:
    """Freeze or unfreeze the backbone; BatchNormalization stays frozen either way."""
    backbone.trainable = trainable
    if trainable:
        # Keras 3 ignores training=False inside fit(); BN must be frozen layer by layer or its
        # ImageNet statistics are overwritten by small, skewed medical batches.
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def class_weights(labels: np.ndarray, n_classes: int, power: float) -> dict[int, float]:
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    weights *= len(labels) / float((weights * counts).sum())  # mean sample weight 1
    return {k: float(w) for k, w in enumerate(weights)}


def _logit_adjusted_loss(labels: np.ndarray, n_classes: int, tau: float, soft: bool = False):
    """Cross-entropy of softmax(logits + tau * log prior); the model outputs probabilities, so
    log(probabilities) stands in for its logits (equal up to a per-row constant, which softmax ignores).

    soft: the targets are a student's soft targets, its teachers' balanced posteriors. They are moved to
    the training prior (times prior**tau, renormalised) before the comparison, so that the student's own
    output stays the balanced posterior, as its teachers' was. Plain cross-entropy on them would not: the
    teachers had learnt their training images, their targets there lean to the labels (the sqrt-weighted
    skin teachers' agreed with them on 99% of images), and a student fitting those unweighted learns the
    training mix again.
    """
    prior = np.bincount(labels, minlength=n_classes).astype(np.float64)
    shift = tf.constant(tau * np.log(np.maximum(prior, 1) / prior.sum()), dtype=tf.float32)

    def loss(y_true, probabilities):
        logits = tf.math.log(tf.clip_by_value(probabilities, 1e-7, 1.0)) + shift
        if not soft:
            return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
        moved = tf.cast(y_true, tf.float32) * tf.exp(shift)
        moved /= tf.reduce_sum(moved, axis=-1, keepdims=True)
        return keras.losses.categorical_crossentropy(moved, logits, from_logits=True)

    return loss


class _SelectOnValidation(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best balanced accuracy (macro AUC breaks ties)."""

    def __init__(self, x_val, y_val, n_classes, patience, log_path: Path, stage: str, best=None, select=True):
        super().__init__()
        self.select = select
        self.x_val, self.y_val, self.n_classes = x_val, y_val, n_classes
        self.patience, self.log_path, self.stage = patience, log_path, stage
        self.best = best or {"score": -1.0, "weights": None, "epoch": None}
        self.waited = 0
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        probabilities = self.model.predict(self.x_val, batch_size=64, verbose=0)
        predicted = probabilities.argmax(axis=1)
        bal = balanced_accuracy(self.y_val, predicted, self.n_classes)
        auc = macro_ovr_auc(self.y_val, probabilities)
        acc = float(np.mean(predicted == self.y_val))
        score = bal + 0.1 * (0 if np.isnan(auc) else auc)
        improved = score > self.best["score"] or not self.select
        if improved:
            self.best.update(score=score, weights=self.model.get_weights(), epoch=f"{self.stage}:{epoch + 1}")
            self.waited = 0
        else:
            self.waited += 1
            if self.waited >= self.patience and self.select:
                self.model.stop_training = True
        row = {
            "stage": self.stage,
            "epoch": epoch + 1,
            "loss": round(float(logs.get("loss", 0)), 4),
            "train_accuracy": round(float(logs.get("accuracy", 0)), 4),
            "val_accuracy": round(acc, 4),
            "val_balanced_accuracy": round(bal, 4),
            "val_macro_auc": round(float(auc), 4),
            "seconds": round(time.time() - self.started, 1),
            "best": improved,
        }
        new_file = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        print(
            f"  [{self.stage} {epoch + 1}] val acc {acc:.3f} bal {bal:.3f} auc {auc:.3f}"
            f"{'  *best*' if improved else ''}",
            flush=True,
        )


def _dataset(x, y, spec, config, augment: bool):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if augment:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size)
    augmenter = _augmenter(spec, config.seed)

    def prepare(images, labels):
        images = tf.cast(images, tf.float32)
        if augment and augmenter.layers:  # a spec may ask for no augmentation at all
            images = tf.clip_by_value(augmenter(images, training=True), 0.0, 255.0)
        return images, labels

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train(
    spec: ModalitySpec, fit_samples, val_samples, config: TrainingConfig, out_dir: Path, fit_targets=None
) -> dict:
    """Train and write training_log.csv; returns the model (best val epoch's weights) and what provenance records.

    fit_targets: soft targets (images x classes) to learn instead of the labels (a distilled student,
    cnn_model.training.distill); the teachers' class weighting is already in them, so no class weights are added;
    with config.logit_adjustment they are learnt through the same adjusted loss as the teachers' labels.
    """
    keras.utils.set_random_seed(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "training_log.csv"
    log_path.unlink(missing_ok=True)
    class_names = list(spec.class_names)
    if config.input_size:
        spec = replace(spec, input_size=config.input_size)
    if config.input_mask:
        spec = replace(spec, input_mask=tuple(config.input_mask))
    started = time.time()
    x_fit, y_fit = load_arrays(fit_samples, spec, class_names)
    x_val, y_val = load_arrays(val_samples, spec, class_names)
    print(
        f"loaded {len(x_fit)} training and {len(x_val)} validation images in {time.time() - started:.0f}s", flush=True
    )

    model, backbone = build_classifier(spec, config)
    # With a logit-adjusted loss the recorded weights are its prior-equivalent (see TrainingConfig).
    weights = class_weights(y_fit, len(class_names), config.logit_adjustment or config.class_weight_power)
    applied_weights = weights if fit_targets is None and not config.logit_adjustment else None
    # A student's targets already carry these weights (its teachers trained with them), so they are not
    # applied again; they stay in the record because the prevalence correction reads the training prior.
    targets = y_fit if fit_targets is None else np.asarray(fit_targets, dtype=np.float32)
    train_ds = _dataset(x_fit, targets, spec, config, augment=True)
    verbose = 1 if sys.stdout.isatty() else 2
    best = None

    def run_stage(stage, epochs, learning_rate, backbone_trainable):
        nonlocal best
        if epochs <= 0:
            return
        _set_backbone_trainable(backbone, backbone_trainable)
        steps = epochs * int(np.ceil(len(x_fit) / config.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
        soft_accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
        if config.logit_adjustment:
            loss = _logit_adjusted_loss(y_fit, len(class_names), config.logit_adjustment, soft=fit_targets is not None)
            accuracy = "accuracy" if fit_targets is None else soft_accuracy
        elif fit_targets is None:
            loss, accuracy = "sparse_categorical_crossentropy", "accuracy"
        else:
            loss, accuracy = "categorical_crossentropy", soft_accuracy
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=[accuracy])
        selector = _SelectOnValidation(
            x_val.astype(np.float32),
            y_val,
            len(class_names),
            config.patience,
            log_path,
            stage,
            best,
            select=config.select_on_val,
        )
        print(
            f"stage {stage}: {epochs} epochs, lr {learning_rate}, backbone trainable={backbone_trainable}", flush=True
        )
        model.fit(
            train_ds,
            epochs=epochs,
            class_weight=applied_weights,
            callbacks=[selector],
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself
        )
        best = selector.best

    run_stage("head", config.head_epochs, config.head_learning_rate, backbone_trainable=False)
    run_stage("finetune", config.finetune_epochs, config.finetune_learning_rate, backbone_trainable=True)
    model.set_weights(best["weights"])
    return {
        "model": model,
        "best_epoch": best["epoch"],
        "seconds": round(time.time() - started, 1),
        "class_weights": {class_names[k]: round(w, 4) for k, w in weights.items()},
        "config": asdict(config),
    }


def save_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
