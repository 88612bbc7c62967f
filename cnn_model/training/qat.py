"""Quantisation-aware fine-tuning: a float model's int8 twin that keeps the float model's decisions.

Rounding the skin network to int8 after training flipped 2-5% of its malignant flags (cnn_model/CHANGELOG.md): the
error is spread over the whole trunk. Here the float model's file is the teacher. Its weights (batch norms folded
into the convolutions, as the file stores them) are rebuilt into Keras; every weight and activation an int8 file
rounds is rounded during fine-tuning as well (fake quantisation, gradients passed straight through), and the
network learns to give the teacher's logits in spite of the rounding. No label is used, only the teacher's fit
images; val/ and the test slice stay unseen, and are where the twin's served decisions are compared with the
teacher's, image by image (the card's `quantisation_aware`).

The int8 file is converted with the rounding left in the graph, so it uses the ranges the fine-tuning saw. Pooling,
the dense head and the class activation maps stay in float.

    python -m cnn_model.training.qat fit --modality skin_lesion --teacher DIR     # DIR: the float file and its card
    python -m cnn_model.training.qat compare --reference DIR --candidate DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..card import ARTIFACTS_DIR, CARD_FILE, MODEL_FILE, ModelCard
from ..data import list_class_folder, load_arrays, split_test_slice
from ..modalities import MODALITIES, get_spec
from ..runtime import ModelRunner
from ..specs import QuantisationAware
from .crossval.folds import DEFAULT_DATA_ROOT
from .export import MIN_TOP1_AGREEMENT, NEAR_TIE_MARGIN, agrees, build_serving_model, compare_with_reference

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")
QUANTIZATION = "int8_float_head (quantisation-aware)"


# --- the float network, rebuilt from its file ---------------------------------------------------------------


def file_weights(model_path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """The convolutions' (kernel, bias) in graph order, and the dense head's (kernel, bias), as float32.

    The file keeps float16 constants behind DEQUANTIZE ops; a batch norm is already folded into its convolution.
    Kernels come back in Keras layout: (h, w, in, out) for a convolution, (h, w, channels, 1) for a depthwise one.
    """
    interpreter = Interpreter(
        model_path=str(model_path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    dequantized = {int(op["outputs"][0]): int(op["inputs"][0]) for op in ops if op["op_name"] == "DEQUANTIZE"}

    def constant(index: int) -> np.ndarray:
        value = interpreter.get_tensor(dequantized.get(index, index))
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{model_path}: {value.dtype} weights; the teacher must be a float model's file")
        return value.astype(np.float32)

    convolutions = []
    for op in ops:
        if op["op_name"] in CONVOLUTIONS:
            _, kernel, bias = (int(i) for i in op["inputs"])
            convolutions.append((constant(kernel).transpose(1, 2, 3, 0), constant(bias)))
    dense = next(op for op in ops if op["op_name"] == "FULLY_CONNECTED" and int(op["inputs"][2]) >= 0)
    return convolutions, (constant(int(dense["inputs"][1])).T, constant(int(dense["inputs"][2])))


@keras.saving.register_keras_serializable("medsight_qat")
class FoldedBatchNorm(keras.layers.Layer):
    """Where a batch norm was: its scale is in the convolution's kernel and its shift in its bias."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def folded_backbone(backbone: keras.Model, convolutions) -> keras.Model:
    """The backbone with each batch norm replaced by its convolution's bias, weights from the file."""

    def without_batch_norm(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return FoldedBatchNorm(name=layer.name)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D):
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(backbone, clone_function=without_batch_norm)
    layers = [layer for layer in folded.layers if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)]
    if len(layers) != len(convolutions):
        raise ValueError(f"the file has {len(convolutions)} convolutions, the backbone {len(layers)}")
    for layer, (kernel, bias) in zip(layers, convolutions, strict=True):
        if tuple(layer.kernel.shape) != kernel.shape:
            raise ValueError(f"{layer.name}: kernel {tuple(layer.kernel.shape)} in Keras, {kernel.shape} in the file")
        layer.set_weights([kernel, bias])
    return folded


def logits_model(backbone: keras.Model, dense: tuple[np.ndarray, np.ndarray], size: int) -> keras.Model:
    backbone.name = "backbone"  # export.build_serving_model finds it by this name
    image = keras.Input((size, size, 3), name="image")
    features = backbone(image)
    head = keras.layers.Dense(dense[0].shape[1], name="logits")
    logits = head(keras.layers.GlobalAveragePooling2D(name="pool")(features))
    head.set_weights(list(dense))
    return keras.Model(image, logits, name="logits_model")


def rebuild(teacher_dir: Path) -> tuple[keras.Model, keras.Model]:
    """(float logits model, its backbone) with the weights of a float model's file, built as its card says it was
    trained (backbone, cut, input size)."""
    from .fit import TrainingConfig, build_classifier

    card = json.loads((Path(teacher_dir) / CARD_FILE).read_text())
    trained = card["training"]["config"]
    config = TrainingConfig(
        backbone_path=trained["backbone_path"], feature_layer=trained["feature_layer"], input_size=card["input"]["size"]
    )
    _, backbone = build_classifier(get_spec(card["modality"]), config)
    convolutions, dense = file_weights(Path(teacher_dir) / MODEL_FILE)
    folded = folded_backbone(backbone, convolutions)
    return logits_model(folded, dense, card["input"]["size"]), folded


# --- the same network with int8 rounding ------------------------------------------------------------------


def is_rounded_output(layer) -> bool:
    """Where an int8 file holds a tensor in int8: after each activation, each residual sum, each projection
    (a convolution without activation, its batch norm folded in) and the input's rescaling."""
    if isinstance(layer, keras.layers.Activation | keras.layers.ReLU | keras.layers.Add | keras.layers.Rescaling):
        return True
    return isinstance(layer, FoldedBatchNorm) and layer.name.endswith("project_bn")


def activation_ranges(backbone: keras.Model, images: np.ndarray) -> dict[str, tuple[float, float]]:
    """Each rounded tensor's min and max over the calibration images, as the converter's calibration takes them."""
    layers = [layer for layer in backbone.layers if is_rounded_output(layer)]
    probe = keras.Model(backbone.input, [layer.output for layer in layers])
    low = {layer.name: np.inf for layer in layers}
    high = {layer.name: -np.inf for layer in layers}
    for start in range(0, len(images), 32):
        outputs = probe(images[start : start + 32], training=False)
        for layer, value in zip(layers, outputs, strict=True):
            value = np.asarray(value)
            low[layer.name] = min(low[layer.name], float(value.min()))
            high[layer.name] = max(high[layer.name], float(value.max()))
    return {name: (min(low[name], 0.0), max(high[name], 0.0)) for name in low}


def round_activation(x, value_range: tuple[float, float]):
    return tf.quantization.fake_quant_with_min_max_args(x, min=value_range[0], max=value_range[1], num_bits=8)


def round_kernel(kernel, depthwise: bool):
    """Per output channel, symmetric, -127..127: how the converter stores int8 convolution weights."""
    if depthwise:  # (h, w, channels, 1): the channels are the output channels
        shape = tf.shape(kernel)
        kernel = tf.transpose(kernel, (0, 1, 3, 2))
    limit = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=(0, 1, 2)), 1e-8))
    rounded = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        kernel, -limit, limit, num_bits=8, narrow_range=True
    )
    return tf.reshape(tf.transpose(rounded, (0, 1, 3, 2)), shape) if depthwise else rounded


@keras.saving.register_keras_serializable("medsight_qat")
class RoundedConv2D(keras.layers.Conv2D):
    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, round_kernel(kernel, depthwise=False))


@keras.saving.register_keras_serializable("medsight_qat")
class RoundedDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    def call(self, inputs):
        outputs = tf.nn.depthwise_conv2d(
            inputs, round_kernel(self.kernel, depthwise=True), (1, *self.strides, 1), self.padding.upper()
        )
        outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable("medsight_qat")
class RoundedOutput(keras.layers.Layer):
    """Wraps a layer and rounds what it gives to int8 over a fixed range."""

    def __init__(self, inner, value_range, **kwargs):
        super().__init__(name=inner.name, **kwargs)
        self.inner = inner
        self.value_range = tuple(value_range)

    def call(self, inputs, training=None, mask=None):
        return round_activation(self.inner(inputs), self.value_range)


def rounded_backbone(folded: keras.Model, ranges: dict[str, tuple[float, float]]) -> keras.Model:
    """The folded backbone with int8 rounding of weights and activations, sharing no variables with it."""

    def rounded(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return RoundedDepthwiseConv2D.from_config(config)
        if isinstance(layer, keras.layers.Conv2D):
            return RoundedConv2D.from_config(config)
        copy = layer.__class__.from_config(config)
        if is_rounded_output(layer):
            return RoundedOutput(copy, ranges[layer.name])
        return copy

    model = keras.models.clone_model(folded, clone_function=rounded)
    for layer in model.layers:
        source = folded.get_layer(layer.name)
        if source.weights:
            layer.set_weights(source.get_weights())
    return model


# --- fine-tuning ------------------------------------------------------------------------------------------


FLIP_VIEWS = ((False, False), (True, False), (False, True), (True, True))  # (left-right, up-down)


def flipped(images: np.ndarray, view: tuple[bool, bool]) -> np.ndarray:
    if view[0]:
        images = images[:, :, ::-1]
    if view[1]:
        images = images[:, ::-1]
    return images


def served_arrays(samples, spec) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): float pixels exactly as serving preprocesses them."""
    return load_arrays(samples, spec, spec.class_names, dtype=np.float32)


def centred(logits):
    """Softmax and everything served after it ignore a constant added to every logit of an image."""
    return logits - tf.reduce_mean(logits, axis=-1, keepdims=True)


def fine_tune(
    modality: str,
    teacher_dir: Path,
    step: QuantisationAware,
    *,
    work_dir: Path,
    data_root: Path = DEFAULT_DATA_ROOT,
    batch_size: int = 32,
    calibration_images: int = 500,
    seed: int = 0,
) -> tuple[bytes, dict]:
    """(the int8 file, what the fine-tuning did). The fine-tuned weights are kept in work_dir."""
    spec = ModelRunner(teacher_dir).spec  # sized as the teacher was trained
    work_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    started = time.time()
    teacher, folded = rebuild(teacher_dir)
    dense = teacher.get_layer("logits").get_weights()
    # The teacher's fit images only: val/ and the test slice stay unseen, so the card's figures and the
    # comparison with the teacher on them are on images the fine-tuning never saw.
    images, _ = served_arrays(teacher_splits(teacher_dir, spec, data_root)["fit"], spec)
    log(f"{len(images)} fit images loaded, {time.time() - started:.0f} s")
    views = np.stack([teacher.predict(flipped(images, v), batch_size=64, verbose=0) for v in FLIP_VIEWS])
    log(f"teacher logits for {len(FLIP_VIEWS)} flip views, {time.time() - started:.0f} s")
    ranges = activation_ranges(folded, images[rng.permutation(len(images))[:calibration_images]])
    size = teacher.input_shape[1]
    student = logits_model(rounded_backbone(folded, ranges), [np.asarray(w) for w in dense], size)
    steps = step.epochs * int(np.ceil(len(images) / batch_size))
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(step.learning_rate, steps))

    @tf.function
    def train_step(x, target):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(centred(student(x, training=False)) - centred(target)))
        gradients = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(gradients, student.trainable_variables, strict=True))
        return loss

    watched = np.sort(rng.permutation(len(images))[:512])  # a fixed sample of every class, to follow the fit
    history = [{"epoch": 0} | agreement(student, images[watched], views[0][watched])]
    log(f"epoch 0 (rounded, not fine-tuned): {history[-1]}")
    for epoch in range(1, step.epochs + 1):
        order = rng.permutation(len(images))
        view_of = rng.integers(len(FLIP_VIEWS), size=len(images))  # one random flip view per image and epoch
        losses = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            x = np.stack([flipped(images[i][None], FLIP_VIEWS[view_of[i]])[0] for i in rows])
            losses.append(float(train_step(tf.constant(x), tf.constant(views[view_of[rows], rows]))))
        history.append(
            {"epoch": epoch, "loss": round(float(np.mean(losses)), 5)}
            | agreement(student, images[watched], views[0][watched])
        )
        log(f"epoch {epoch}: {history[-1]}, {time.time() - started:.0f} s")
    student.save_weights(work_dir / "student.weights.h5")
    summary = {
        "fit_images": len(images),
        "epochs": step.epochs,
        "learning_rate": step.learning_rate,
        "batch_size": batch_size,
        "loss": "mean squared difference of the logits (each image's mean removed) from the teacher's, flip views",
        "calibration_images": calibration_images,
        "seconds": round(time.time() - started, 1),
        "history": history,
    }
    (work_dir / "activation_ranges.json").write_text(json.dumps(ranges, indent=1) + "\n")
    return int8_file(student), summary


def agreement(student: keras.Model, images: np.ndarray, teacher_logits: np.ndarray) -> dict:
    """How closely the rounded network gives the teacher's logits on these images."""
    logits = student.predict(images, batch_size=64, verbose=0)
    difference = np.asarray(centred(logits)) - np.asarray(centred(teacher_logits))
    return {
        "top1_agreement": round(float(np.mean(logits.argmax(1) == teacher_logits.argmax(1))), 4),
        "logit_rmse": round(float(np.sqrt(np.mean(difference**2))), 4),
    }


def teacher_splits(teacher_dir: Path, spec, data_root: Path) -> dict[str, list]:
    """The teacher's own split of the dataset: what it trained on (fit), and the test slice and val/ it never saw.

    A recipe refit on all of train/ has no test slice: its card's test-slice counts are empty, and the whole of
    train/ is fit data.
    """
    card = json.loads((Path(teacher_dir) / CARD_FILE).read_text())
    train = list_class_folder(Path(data_root) / spec.name / "train", spec)
    fit, test_slice = split_test_slice(train)
    if not any(card["training"]["data"]["counts"]["test_slice"].values()):
        fit, test_slice = train, []
    return {"fit": fit, "test_slice": test_slice, "val": list_class_folder(Path(data_root) / spec.name / "val", spec)}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# --- the int8 file -----------------------------------------------------------------------------------------


def int8_file(student: keras.Model) -> bytes:
    """image -> (logits, CAMs) as export serves every model, the trunk in int8 at the fine-tuning's ranges (the
    converter reads them from the rounding left in the graph; no calibration data)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(build_serving_model(student))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def write_artifact(
    modality: str,
    teacher_dir: Path,
    out_dir: Path,
    model_bytes: bytes,
    summary: dict,
    *,
    data_root: Path,
    min_agreement: float = MIN_TOP1_AGREEMENT,
    bootstrap_rounds: int = 1000,
) -> ModelCard:
    """Check the int8 file against its teacher, then serve it from out_dir with its card: the teacher's card with
    this file and version, scored again (scoring.score_artifact), and how its served decisions differ from the
    teacher's on the images neither trained on. A file that fails the export rule is refused before anything is
    written; the rest of out_dir (the capture check's quality.json) is left as it is."""
    from .scoring import score_artifact, write_card

    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    if out_dir.resolve() == teacher_dir.resolve():
        raise ValueError(f"{out_dir}: the int8 file would replace its own teacher; write it elsewhere")
    teacher = ModelRunner(teacher_dir)
    spec = teacher.spec
    splits = teacher_splits(teacher_dir, spec, data_root)
    check = export_check(teacher, model_bytes, splits, min_agreement)
    if not check["passed"]:
        raise RuntimeError(f"{modality}: the int8 file fails the export rule against its teacher: {check}")
    card = json.loads((teacher_dir / CARD_FILE).read_text())
    teacher_artifact = dict(card["artifact"])
    card["version"] = get_spec(modality).recipe.version
    card["artifact"] |= {
        "bytes": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "quantization": QUANTIZATION,
    }
    card["export_check"] = check
    card["training"]["export_command"] = f"python -m cnn_model.training.qat fit --modality {modality} --teacher DIR"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_FILE).write_bytes(model_bytes)
    write_card(out_dir / CARD_FILE, ModelCard.from_json(card))
    score_artifact(out_dir, data_root=data_root, bootstrap_rounds=bootstrap_rounds)

    # Compared as each file is served now: the twin by the rules its card was just scored with.
    served = ModelRunner(out_dir)
    scored = served.card.to_json()
    scored["quantisation_aware"] = {
        "teacher": {"version": card["training"]["version"], "served_as": teacher.version} | teacher_artifact,
        **summary,
        "served_decisions_against_the_teacher": {
            split: decisions_compared(teacher, served, *served_arrays(samples, teacher.spec))
            for split, samples in splits.items()
            if samples and split != "fit"
        },
    }
    written = ModelCard.from_json(scored)
    write_card(out_dir / CARD_FILE, written)
    return written


def export_check(teacher: ModelRunner, model_bytes: bytes, splits: dict, min_agreement: float) -> dict:
    """The export rule (export.py) with the teacher file in the place of the Keras model."""
    x_val, _ = served_arrays(splits["val"], teacher.spec)
    x_unseen = (
        np.concatenate([x_val, served_arrays(splits["test_slice"], teacher.spec)[0]]) if splits["test_slice"] else x_val
    )
    check = {
        "quantization": QUANTIZATION,
        "bytes": len(model_bytes),
        "reference": "the teacher file (the float model this one was fine-tuned to imitate)",
        "val": compare_with_reference(model_bytes, x_val, teacher.network_run(x_val)[0]),
        "val_and_test_slice": compare_with_reference(model_bytes, x_unseen, teacher.network_run(x_unseen)[0]),
        "rule": (
            f"top-1 agreement with the teacher >= {min_agreement} on val, or else every disagreement on "
            f"val + test slice is a near-tie of the teacher (top-2 probability margin < {NEAR_TIE_MARGIN})"
        ),
    }
    check["top1_agreement"] = check["val"]["top1_agreement"]
    check["passed"] = agrees(check, min_agreement)
    return check


# --- the int8 file against the shipped one ---------------------------------------------------------------


def compare(
    reference_dir: Path, candidate_dir: Path, data_root: Path = DEFAULT_DATA_ROOT, timing_rounds: int = 5
) -> dict:
    """Served decisions of two files of one modality on every labelled image, split as the reference was trained
    (its fit images, test slice and val/), and both files' invoke times on 100 val images, taken alternately in
    one process (one thread each)."""
    reference, candidate = ModelRunner(reference_dir), ModelRunner(candidate_dir)
    if reference.spec.name != candidate.spec.name:
        raise ValueError(
            f"{reference_dir} is a {reference.spec.name} model, {candidate_dir} a {candidate.spec.name} one"
        )
    spec = reference.spec
    report = {"modality": spec.name, "reference": reference.version, "candidate": candidate.version}
    splits = teacher_splits(reference_dir, spec, data_root)
    for split, samples in splits.items():
        if samples:
            report[split] = decisions_compared(reference, candidate, *served_arrays(samples, spec))
    x_val, _ = served_arrays(splits["val"][:100], spec)
    report["invoke_ms"] = invoke_times(reference, candidate, x_val, timing_rounds)
    return report


def decisions_compared(reference, candidate, images: np.ndarray, y: np.ndarray) -> dict:
    """What a patient would see change: top-1 labels, malignant flags and prediction sets, each as served, and
    both files' figures on these images (reference first)."""
    spec = reference.spec
    served = [runner.run(images)[0] for runner in (reference, candidate)]
    flags = [runner.decision.positive(p, spec) for runner, p in zip((reference, candidate), served, strict=True)]
    positive = np.isin(y, [spec.class_names.index(c) for c in spec.positive_classes])
    top2 = np.sort(served[0], axis=1)[:, -2:]
    top1_flips = served[0].argmax(1) != served[1].argmax(1)
    report = {
        "n": int(len(y)),
        "top1_flips": int(top1_flips.sum()),
        "top1_flip_margins": [round(float(m), 4) for m in (top2[:, 1] - top2[:, 0])[top1_flips]],
        "flag_flips": int(np.sum(flags[0] != flags[1])),
        "flags_gained_lost": [int(np.sum(flags[1] & ~flags[0])), int(np.sum(flags[0] & ~flags[1]))],
        # Of the images whose label is a positive kind (malignant/abnormal): flagged by the reference, not any more.
        "positives_unflagged": int(np.sum(positive & flags[0] & ~flags[1])),
        "max_abs_probability_difference": round(float(np.abs(served[0] - served[1]).max()), 4),
        "accuracy": [round(float(np.mean(p.argmax(1) == y)), 4) for p in served],
        "flag_sensitivity": [round(float(f[positive].mean()), 4) if positive.any() else None for f in flags],
        "flag_specificity": [round(float(1 - f[~positive].mean()), 4) if (~positive).any() else None for f in flags],
    }
    if reference.sets and candidate.sets:
        sets = [
            [runner.sets.prediction_set(p, spec.class_names) for p in probabilities]
            for runner, probabilities in zip((reference, candidate), served, strict=True)
        ]
        report["prediction_sets_changed"] = int(sum(a != b for a, b in zip(*sets, strict=True)))
    return report


def invoke_times(reference, candidate, images: np.ndarray, rounds: int) -> dict:
    timings = {"reference": [], "candidate": []}
    for _ in range(rounds):
        for name, runner in (("reference", reference), ("candidate", candidate)):
            for x in images:
                started = time.perf_counter()
                runner.network_run(x[None])
                timings[name].append(time.perf_counter() - started)
    return {name: round(float(np.median(values)) * 1000, 3) for name, values in timings.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_model.training.qat", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fine-tune the teacher with int8 rounding; write the int8 file and its card")
    fit.add_argument("--modality", required=True, choices=MODALITIES)
    fit.add_argument("--teacher", required=True, type=Path, help="the float model's folder (card.json + model.tflite)")
    fit.add_argument(
        "--artifacts-dir", type=Path, default=ARTIFACTS_DIR, help="the file goes to ARTIFACTS_DIR/MODALITY"
    )
    fit.add_argument("--run-dir", type=Path, default=Path("training_runs/qat"), help="where the fine-tuned weights go")
    fit.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    side_by_side = commands.add_parser("compare", help="two files' served decisions on every image, and their speed")
    side_by_side.add_argument("--reference", required=True, type=Path)
    side_by_side.add_argument("--candidate", required=True, type=Path)
    side_by_side.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = parser.parse_args(argv)
    if args.command == "compare":
        print(json.dumps(compare(args.reference, args.candidate, args.data_root), indent=1))
        return 0
    step = get_spec(args.modality).recipe.quantisation_aware
    if step is None:
        parser.error(f"{args.modality}'s recipe serves its float model (no quantisation_aware step)")
    teacher_version = json.loads((args.teacher / CARD_FILE).read_text())["version"]
    if teacher_version != step.teacher_version:
        parser.error(f"{args.teacher} holds version {teacher_version}; the recipe's teacher is {step.teacher_version}")
    model_bytes, summary = fine_tune(
        args.modality, args.teacher, step, work_dir=args.run_dir / args.modality, data_root=args.data_root
    )
    out_dir = args.artifacts_dir / args.modality
    card = write_artifact(args.modality, args.teacher, out_dir, model_bytes, summary, data_root=args.data_root)
    print(json.dumps({"modality": args.modality, "version": card.version, "metrics": card.metrics}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
