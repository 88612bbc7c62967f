"""Quantisation-aware fine-tuning (cnn_model.training.qat): a float model's int8 twin, end to end on a tiny run."""

import json
from dataclasses import replace

import numpy as np
import pytest

from cnn_model.interpreter import LiteInterpreter
from cnn_model.modalities import SPECS
from cnn_model.runtime import ModelRunner
from cnn_model.specs import QuantisationAware, TrainingRecipe
from tests.cnn_model.conftest import IMAGES_PER_CLASS, train_tiny_breast
from tests.support.images import sample_image

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_kernels_are_rounded_to_the_int8_grid_of_each_output_channel():
    import tensorflow as tf

    from cnn_model.training.qat import round_kernel

    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 8)).astype(np.float32) * np.geomspace(0.01, 10, 8).astype(np.float32)
    rounded = round_kernel(tf.constant(kernel), depthwise=False).numpy()
    scale = np.abs(kernel).max(axis=(0, 1, 2)) / 127  # symmetric, -127..127, one scale per output channel
    steps = rounded / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() == pytest.approx(127, abs=1e-3)
    np.testing.assert_allclose(rounded, kernel, atol=float(scale.max()) / 2 + 1e-6)
    # A depthwise kernel (h, w, channels, 1) has its channels as output channels.
    depthwise = kernel[:, :, :1, :].transpose(0, 1, 3, 2)
    rounded = round_kernel(tf.constant(depthwise), depthwise=True).numpy()
    steps = rounded[:, :, :, 0] / (np.abs(depthwise).max(axis=(0, 1, 3)) / 127)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)


def test_a_quantisation_aware_recipe_serves_the_int8_twin_of_its_float_model(tiny_breast_dataset, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from cnn_model.training.qat import QUANTIZATION, file_weights

    recipe = TrainingRecipe(
        version="0.0.4",
        head_epochs=0,
        finetune_epochs=1,
        quantisation_aware=QuantisationAware(teacher_version="0.0.4", epochs=2, learning_rate=1e-4),
    )
    with SPECS.registered(replace(SPECS["breast"], recipe=recipe, threshold_source="val", calibration_source=None)):
        train_tiny_breast(tiny_breast_dataset, tmp_path)
    served, teacher = tmp_path / "artifacts" / "breast", tmp_path / "runs" / "breast" / "teacher" / "breast"

    # The float model is kept aside as the teacher; the served file is int8 up to the pooled float head.
    teacher_card = json.loads((teacher / "card.json").read_text())
    assert teacher_card["artifact"]["quantization"] == "float16" and teacher_card["version"] == "0.0.4-float"
    card = json.loads((served / "card.json").read_text())
    assert card["version"] == "0.0.4" and card["artifact"]["quantization"] == QUANTIZATION
    interpreter = Interpreter(model_path=str(served / "model.tflite"))
    types = {(op["op_name"], op["operand_types"][0].__name__) for op in interpreter._get_ops_details()}
    assert ("CONV_2D", "int8") in types and ("FULLY_CONNECTED", "float32") in types
    assert ("CONV_2D", "float32") not in types

    # The card says what the twin learnt from and how its served decisions differ from the teacher's.
    learnt = card["quantisation_aware"]
    assert learnt["teacher"]["sha256"] == teacher_card["artifact"]["sha256"]
    assert learnt["teacher"]["served_as"] == "0.0.4-float"
    # It learnt from the teacher's fit images only: the test slice and val/ stay unseen by both.
    assert learnt["fit_images"] == sum(teacher_card["training"]["data"]["counts"]["fit"].values())
    assert set(learnt["served_decisions_against_the_teacher"]) <= {"val", "test_slice"}
    assert learnt["epochs"] == 2 and [row["epoch"] for row in learnt["history"]] == [0, 1, 2]
    against = learnt["served_decisions_against_the_teacher"]["val"]
    assert against["n"] == IMAGES_PER_CLASS["val"] * len(SPECS["breast"].classes)
    assert card["export_check"]["reference"].startswith("the teacher file")
    assert card["metrics"]["val"]["n"] == against["n"]
    assert ModelRunner(served).predict(sample_image("breast")).label in SPECS["breast"].class_names

    # An int8 file cannot be a teacher: its weights are already rounded.
    with pytest.raises(ValueError, match="the teacher must be a float model's file"):
        file_weights(served / "model.tflite")


def test_a_float_file_is_rebuilt_into_the_same_network_with_its_batch_norms_folded(tmp_path):
    import keras

    from cnn_model.training.export import build_serving_model, convert
    from cnn_model.training.fit import TrainingConfig, build_classifier
    from cnn_model.training.qat import rebuild

    spec = SPECS["breast"]
    classifier, backbone = build_classifier(spec, TrainingConfig(input_size=32))
    rng = np.random.default_rng(2)
    for layer in backbone.layers:  # batch norms far from the identity, so that folding them matters
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, gamma.shape),
                    rng.normal(0, 1, beta.shape),
                    rng.normal(0, 1, mean.shape),
                    rng.uniform(0.5, 2, variance.shape),
                ]
            )
    head = classifier.get_layer("logits")
    head.set_weights([rng.normal(0, 1, w.shape) for w in head.get_weights()])
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "model.tflite").write_bytes(convert(build_serving_model(classifier), "float16", images))
    card = {
        "modality": "breast",
        "input": {"size": 32},
        "training": {"config": {"backbone_path": None, "feature_layer": None}},
    }
    (teacher / "card.json").write_text(json.dumps(card))

    rebuilt, folded = rebuild(teacher)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    logits = rebuilt.predict(images, verbose=0)
    from_file, _ = LiteInterpreter((teacher / "model.tflite").read_bytes()).run(images)
    expected = np.log(from_file)
    assert np.ptp(logits, axis=1).min() > 0.5  # logits that differ, so the comparison says something
    np.testing.assert_allclose(
        logits - logits.mean(1, keepdims=True), expected - expected.mean(1, keepdims=True), atol=2e-3
    )


def test_a_plain_export_refuses_to_replace_an_int8_twin(capsys):
    from cnn_model.training.__main__ import main

    assert SPECS["skin_lesion"].recipe.quantisation_aware is not None
    assert main(["export", "--modality", "skin_lesion"]) == 2
    assert "python -m cnn_model.training.qat fit --modality skin_lesion" in capsys.readouterr().err
