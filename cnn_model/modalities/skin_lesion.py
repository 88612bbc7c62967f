"""Skin lesions: dermatoscopic photos, HAM10000's seven classes."""

from ..specs import (
    CaptureGuide,
    ClassSpec,
    CrossValidationPlan,
    GroupRule,
    ModalitySpec,
    PatientAdvice,
    QualityTargets,
    QuantisationAware,
    TrainingRecipe,
    image_path_group,
)

NAME = "skin_lesion"

SPEC = ModalitySpec(
    name=NAME,
    display_name="Skin lesion (dermatoscopic photo)",
    classes=(
        ClassSpec(
            "akiec",
            "Actinic keratosis / intraepithelial carcinoma",
            "A rough, scaly sun-damage lesion that can be an early, superficial skin cancer.",
            True,
            in_a_sentence="an actinic keratosis",
        ),
        ClassSpec(
            "bcc",
            "Basal cell carcinoma",
            "The most common skin cancer; it grows slowly and rarely spreads.",
            True,
            in_a_sentence="a basal cell carcinoma",
            snomed_ct=("254701007", "Basal cell carcinoma of skin"),
        ),
        ClassSpec(
            "bkl",
            "Benign keratosis-like lesion",
            "A harmless growth such as a seborrhoeic keratosis or solar lentigo.",
            False,
            in_a_sentence="a benign keratosis",
        ),
        ClassSpec(
            "df",
            "Dermatofibroma",
            "A harmless firm bump in the skin, often after a small injury.",
            False,
            in_a_sentence="a dermatofibroma",
        ),
        ClassSpec(
            "mel",
            "Melanoma",
            "A cancer of pigment cells that needs prompt assessment by a dermatologist.",
            True,
            in_a_sentence="a melanoma",
            snomed_ct=("372244006", "Malignant melanoma"),
        ),
        ClassSpec(
            "nv",
            "Melanocytic nevus (mole)",
            "A common mole made of pigment cells, usually harmless.",
            False,
            in_a_sentence="a mole",
        ),
        ClassSpec(
            "vasc",
            "Vascular lesion",
            "A blood-vessel lesion such as an angioma; usually harmless.",
            False,
            in_a_sentence="a vascular lesion",
        ),
    ),
    positive_flag="is_malignant",
    input_size=192,  # close to the 200x150 source width; 160 px scored lower (CHANGELOG, 1.0.0)
    color_mode="RGB",
    resize_mode="stretch",
    group_rule=GroupRule(
        "lesion_id from metadata.csv (several photos of one lesion stay together)",
        from_file_name=image_path_group,
        side_file="metadata.csv",
        side_column="lesion_id",
    ),
    recipe=TrainingRecipe(
        version="1.4.0",
        head_epochs=2,
        finetune_epochs=12,
        # Seven classes: int8 rounding after training flipped up to 7% of val decisions against Keras, so the
        # float model has float16 weights, which fit 5 MB only with the backbone cut here.
        feature_layer="block6d_add",
        # Its grouped 5-fold cross-validation (the same recipe, fixed 2 + 12 epochs): the calibration, the
        # partial prevalence correction and the malignant threshold below are chosen on its OOF predictions.
        cv_candidate="baseline",
        # Served in int8: the float 1.2.1 file fine-tuned with int8 rounding to give its logits (on its fit
        # images only), twice as fast; 1 of 471 val and 5 of 540 test-slice flags differ from 1.2.1's, and no
        # malignant lesion lost its flag (cnn_model/CHANGELOG.md, 1.4.0).
        quantisation_aware=QuantisationAware(teacher_version="1.2.1", epochs=10, learning_rate=1e-5),
    ),
    targets=QualityTargets(accuracy=0.80, balanced_accuracy=0.65, macro_auc=0.93),
    held_out_checks=(
        {
            "version": "1.2.0",
            "by": "the product owner",
            "data": "the data owner's held-out part: unseen lesions at HAM10000's natural mix",
            "accuracy": 0.809,
            "balanced_accuracy": 0.609,
            "macro_auc": 0.956,
            "expected_calibration_error": 0.026,
            "flag": {"rule": "the card's val threshold", "sensitivity": 0.88, "specificity": 0.79},
            "note": "recall: melanoma 0.50, akiec 0.36, df 0.53",
        },
    ),
    data_caveats=(
        "HAM10000 at one third of its resolution, seven pigmented-lesion classes only, mostly fair "
        "skin; any other condition is forced into one of the seven. Val and test slice hold far "
        "fewer moles (nv) than real practice, so their plain accuracy is not accuracy in use: "
        "accuracy_at_prevalence re-weights the same per-class recalls to HAM10000's own mix."
    ),
    upload_hint="A close-up dermatoscopic photo of one mole or spot on the skin, the lesion in the middle.",
    main_limitation=(
        "It learnt from photos of mostly fair skin and of seven kinds of pigmented spot only: it may be less "
        "reliable on darker skin, and any other skin condition is forced into one of the seven."
    ),
    augmentation={
        "flip": "horizontal_and_vertical",
        "rotation": 0.5,
        "zoom": 0.15,
        "translation": 0.05,
        "contrast": 0.15,
        "brightness": 0.1,
    },
    # Our training set caps moles (nv) at a third; in practice two in three lesions are moles.
    prevalence={"akiec": 327, "bcc": 514, "bkl": 1099, "df": 115, "mel": 1113, "nv": 6705, "vasc": 142},
    prevalence_source="HAM10000 as published (Tschandl et al. 2018): 10,015 images, 67% nv",
    sensitivity_target=0.85,
    # The full prevalence correction pushed rare classes to nv (held-out balanced accuracy 0.609); the partial
    # one keeps accuracy at HAM10000's mix >= 0.80 (targets.accuracy) with the most balanced accuracy.
    prevalence_power_source="cv_oof",
    threshold_source="cv_oof",
    calibration_source="cv_oof",
    dataset_licence="CC BY-NC 4.0 (non-commercial use with attribution; HAM10000, Tschandl et al. 2018)",
    capture_guide=CaptureGuide(
        title="How to take a good dermatoscope photo",
        steps=(
            ("One spot at a time,", "in the middle of the picture, filling most of it."),
            (
                "Touch the skin with the dermatoscope",
                "(a drop of the gel or alcohol it came with helps) so there is no glare or shine.",
            ),
            ("Hold still and let it focus:", "the edge of the spot should look sharp, not soft."),
            ("Even light, no shadow:", "the dermatoscope's own light is best; no flash, no filters."),
            ("Keep hair out of the way", "where you can, and do not mark the skin with pen."),
            ("Send the photo as the camera saved it,", "not a screenshot or a cropped copy of a copy."),
        ),
        example_caption="A good example: one mole, in focus and centred. (HAM10000, CC BY-NC 4.0.)",
    ),
    advice=PatientAdvice(
        flagged=(
            "Please show this image to a doctor or dermatologist soon. A flag is not a diagnosis: many flagged "
            "images turn out to be harmless, but only a clinician can tell."
        ),
        not_flagged=(
            "This does not rule anything out. If you are worried, or the spot's size, shape or colour or your "
            "symptoms change, talk to a clinician."
        ),
        uncertain="show it to a dermatologist",
        not_recognised=(
            "MedSight reads dermatoscope photos only: close-ups taken through a dermatoscope (a magnifying lens "
            "with its own light, held on or just over the skin) with one spot in the middle. It cannot read an "
            "ordinary phone or camera photo of the skin, or a picture of anything else."
        ),
    ),
    cross_validation=CrossValidationPlan(
        sensitivity_floor=0.85,
        candidates={
            "baseline": {},
            # The held-out part says the rare classes are the problem (melanoma recall 0.50, akiec 0.36, df 0.53).
            # A logit-adjusted loss learns the balanced posterior directly, instead of sqrt class weights.
            "logit_adjusted": {"logit_adjustment": 1.0},
            # 224 px from the 200x150 source: more of the texture the rare classes differ by (slower by ~1.4x).
            # Two folds ran: within the baseline's noise, with signs changing between them (model_runs/README.md).
            "px224": {"input_size": 224},
            # Serving speed: the trunk to block5c at 160 px takes about half the shipped network's time (a
            # float16 file near 2 ms per image), at the cost of the trunk's last blocks. Two folds lost 6-15
            # points of balanced accuracy against the baseline's (model_runs/README.md): stopped there.
            "fast_b5c_160": {"input_size": 160, "feature_layer": "block5c_add"},
        },
    ),
)
