"""Chest X-rays: paediatric frontal radiographs, normal or pneumonia."""

from ..specs import ClassSpec, GroupRule, ModalitySpec, QualityTargets, TrainingRecipe, file_name_prefix_group

NAME = "chest_xray"

SPEC = ModalitySpec(
    name=NAME,
    display_name="Chest X-ray (paediatric, frontal)",
    classes=(
        ClassSpec("normal", "Normal", "No sign of pneumonia was found on this chest X-ray.", False),
        ClassSpec(
            "pneumonia",
            "Pneumonia",
            "Patterns consistent with a lung infection (bacterial or viral pneumonia).",
            True,
        ),
    ),
    positive_flag="is_abnormal",
    input_size=160,
    color_mode="L",
    resize_mode="stretch",
    group_rule=GroupRule(
        "patient_id from labels.csv",
        # Without labels.csv: the patient part of the file name (person123_..., IM-0001-..., NORMAL2-IM-...).
        from_file_name=file_name_prefix_group(r"(person\d+)_", r"((?:NORMAL2-)?IM-\d+)"),
        side_file="labels.csv",
        side_column="patient_id",
    ),
    recipe=TrainingRecipe(version="1.1.0", head_epochs=2, finetune_epochs=10),
    targets=QualityTargets(accuracy=0.96, balanced_accuracy=0.96, macro_auc=0.99),
    held_out_checks=(
        {
            "version": "1.1.0",
            "by": "the product owner",
            "data": "the data owner's held-out part: unseen patients at the source's natural mix",
            "accuracy": 0.973,
            "balanced_accuracy": 0.969,
            "macro_auc": 0.996,
            "expected_calibration_error": 0.009,
            "flag": {"rule": "top-1 class", "sensitivity": 0.98, "specificity": 0.96},
        },
    ),
    data_caveats=(
        "Paediatric (age 1-5) frontal X-rays from one centre, squashed to a square; not validated "
        "on adults. Pneumonia images more often show tubes and markers a CNN can learn, and every normal "
        "film comes from other file series than every pneumonia film, so no split of this data can tell "
        "pathology from how a film was taken: the heatmaps of normal films centre on the top of the chest "
        "and the neck rather than the lungs."
    ),
    upload_hint="A frontal chest X-ray of a young child (the model was trained on ages 1 to 5).",
    # No flips: left/right anatomy (heart side, markers) is meaningful on a radiograph.
    augmentation={
        "flip": None,
        "rotation": 0.02,
        "zoom": 0.1,
        "translation": 0.05,
        "contrast": 0.15,
        "brightness": 0.1,
    },
)
