"""Breast ultrasound: BUSI's benign, malignant and normal images."""

from ..specs import ClassSpec, GroupRule, ModalitySpec, QualityTargets, TrainingRecipe, image_path_group

NAME = "breast"

SPEC = ModalitySpec(
    name=NAME,
    display_name="Breast ultrasound",
    classes=(
        ClassSpec(
            "benign",
            "Benign lesion",
            "A lesion with features of a non-cancerous mass, such as a cyst or fibroadenoma.",
            False,
        ),
        ClassSpec(
            "malignant",
            "Malignant lesion",
            "A lesion with features that can indicate breast cancer and needs follow-up.",
            True,
        ),
        ClassSpec("normal", "No lesion seen", "No lesion is visible in this ultrasound image.", False),
    ),
    positive_flag="is_malignant",
    input_size=160,
    color_mode="L",
    resize_mode="stretch",
    group_rule=GroupRule("image path (BUSI has no patient ids)", from_file_name=image_path_group),
    recipe=TrainingRecipe(version="1.0.0", head_epochs=3, finetune_epochs=25),
    targets=QualityTargets(accuracy=0.82, balanced_accuracy=0.78, macro_auc=0.92),
    data_caveats=(
        "BUSI: 780 images from 600 patients without patient ids, so near-duplicate scans straddle the "
        "splits and figures are optimistic; some near-identical scans carry opposite labels."
    ),
    upload_hint="A single breast ultrasound image (grey, B-mode), as saved from the scanner.",
    # Horizontal flips only: depth runs top to bottom in an ultrasound image.
    augmentation={
        "flip": "horizontal",
        "rotation": 0.03,
        "zoom": 0.1,
        "translation": 0.05,
        "contrast": 0.2,
        "brightness": 0.1,
    },
)
