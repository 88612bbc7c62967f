"""The modality registry: every spec is complete and agrees with its shipped card; the registry can take a new one."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from cnn_model import modalities
from cnn_model.modalities import MODALITIES, SPECS, get_spec
from cnn_model.runtime import ARTIFACTS_DIR, CARD_FILE
from cnn_model.specs import ModalitySpec
from cnn_model.training.scoring import limitations


@pytest.mark.parametrize("name", MODALITIES)
def test_each_spec_is_complete(name):
    spec = SPECS[name]
    assert spec.name == name
    assert len(set(spec.class_names)) == len(spec.classes) >= 2
    assert spec.positive_classes and len(spec.positive_classes) < len(spec.classes)
    assert spec.positive_flag in ("is_malignant", "is_abnormal")
    assert spec.color_mode in ("RGB", "L") and spec.resize_mode in ("stretch", "pad") and spec.input_size > 0
    assert all(0 < value <= 1 for value in asdict(spec.targets).values())
    assert spec.data_caveats and spec.upload_hint and spec.group_rule.description
    assert spec.recipe.head_epochs >= 0 and spec.recipe.finetune_epochs > 0
    if spec.prevalence:
        assert set(spec.prevalence) == set(spec.class_names)
    assert isinstance(spec.group_rule(Path("data/train") / spec.class_names[0] / "image-1.png"), str)


@pytest.mark.parametrize("name", MODALITIES)
def test_the_shipped_card_was_made_by_the_specs_recipe_targets_and_caveats(name):
    spec = SPECS[name]
    card = json.loads((ARTIFACTS_DIR / name / CARD_FILE).read_text())
    training = card["training"]
    assert card["version"] == spec.recipe.version
    assert training["config"]["head_epochs"] == spec.recipe.head_epochs
    assert training["config"]["finetune_epochs"] == spec.recipe.finetune_epochs
    assert training["config"].get("feature_layer") == spec.recipe.feature_layer
    assert training["data"]["group_rule"] == spec.group_rule.description
    assert card["targets"] == asdict(spec.targets)
    assert card["limitations"] == limitations(spec, card["metrics"])  # the spec's targets, then its caveats


@pytest.mark.parametrize(
    ("name", "path", "group"),
    [
        ("chest_xray", "x/train/pneumonia/person1234_bacteria_3141.jpeg", "person1234"),
        ("chest_xray", "x/train/normal/NORMAL2-IM-0123-0001.jpeg", "NORMAL2-IM-0123"),
        ("cervical_cytology", "x/train/normal_columnar/153958345-153958392-001.BMP", "153958345"),
        ("breast", "x/train/benign/benign (12).png", "benign/benign (12).png"),
        ("skin_lesion", "x/train/nv/ISIC_0024306.jpg", "nv/ISIC_0024306.jpg"),  # no metadata.csv beside it
    ],
)
def test_group_rules_read_the_group_from_the_file_name_without_a_side_file(name, path, group):
    assert SPECS[name].group_rule(Path(path)) == group


def test_a_side_file_beside_the_splits_knows_the_group(tmp_path):
    image = tmp_path / "skin_lesion" / "train" / "nv" / "ISIC_1.jpg"
    image.parent.mkdir(parents=True)
    (tmp_path / "skin_lesion" / "metadata.csv").write_text("path,lesion_id\ntrain/nv/ISIC_1.jpg,HAM_0001\n")
    assert SPECS["skin_lesion"].group_rule(image) == "HAM_0001"


def test_an_unknown_modality_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: " + ", ".join(MODALITIES)):
        get_spec("dental")


def test_a_registered_modality_is_seen_by_every_reader_and_goes_again():
    extra = replace(SPECS["breast"], name="extra")
    with SPECS.registered(extra):
        assert MODALITIES[-1] == "extra" and "extra" in MODALITIES and get_spec("extra") is extra
    assert "extra" not in MODALITIES and tuple(MODALITIES) == tuple(spec.name for spec in modalities.BUILT_IN)


def test_a_stand_in_spec_replaces_the_registered_one_in_place():
    original = SPECS["breast"]
    with SPECS.registered(replace(original, input_size=32)):
        assert get_spec("breast").input_size == 32 and MODALITIES == tuple(spec.name for spec in modalities.BUILT_IN)
    assert get_spec("breast") is original


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        SPECS.register(SPECS["breast"])


def test_only_the_skin_advice_speaks_of_a_dermatologist_and_a_spots_changes():
    """What a patient reads after a result is the modality's own (its spec's advice), not the template's."""
    for name, spec in SPECS.items():
        about_skin = name == "skin_lesion"
        assert ("dermatologist" in spec.advice.flagged) == about_skin
        assert ("the spot's size, shape or colour" in spec.advice.not_flagged) == about_skin
        assert "not a diagnosis" in spec.advice.flagged and "talk to a clinician" in spec.advice.not_flagged


def test_every_modality_names_its_datasets_licence_and_sensitivity_floor():
    for spec in SPECS.values():
        assert spec.dataset_licence != ModalitySpec.dataset_licence  # its own, not the fallback
        assert 0.5 < spec.cross_validation.sensitivity_floor < 1
        assert "baseline" in spec.cross_validation.candidates
        if spec.sensitivity_target is not None:
            assert spec.sensitivity_target == spec.cross_validation.sensitivity_floor
