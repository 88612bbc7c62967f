"""Breast ultrasound: BUSI's benign, malignant and normal images."""

from ..specs import (
    ClassSpec,
    CrossValidationPlan,
    GroupRule,
    ModalitySpec,
    QualityTargets,
    TrainingRecipe,
    image_path_group,
)

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
            in_a_sentence="a benign lesion",
        ),
        ClassSpec(
            "malignant",
            "Malignant lesion",
            "A lesion with features that can indicate breast cancer and needs follow-up.",
            True,
            in_a_sentence="a malignant lesion",
        ),
        ClassSpec(
            "normal",
            "No lesion seen",
            "No lesion is visible in this ultrasound image.",
            False,
            in_a_sentence="an image without a lesion",
            snomed_ct=("169254007", "Ultrasound scan normal"),
        ),
    ),
    positive_flag="is_malignant",
    input_size=160,
    color_mode="L",
    resize_mode="stretch",
    group_rule=GroupRule(
        "image path (BUSI has no patient ids)",
        from_file_name=image_path_group,
        near_duplicates="BUSI's near-duplicate scans",
    ),
    recipe=TrainingRecipe(
        version="1.1.1",
        head_epochs=3,
        finetune_epochs=25,
        refit_all_train=True,
        cv_candidate="baseline",
        epoch_budget_source=(
            "grouped 5-fold cross-validation over train/ + val/ (model_runs/breast/baseline): this recipe "
            "with the fixed epoch rule, 3 head + 25 fine-tune epochs, last epoch's weights kept"
        ),
        recipe_check=(
            "grouped 5-fold cross-validation over train/ + val/ (627 images, model_runs/breast/baseline): "
            "see the card's cross_validation"
        ),
    ),
    targets=QualityTargets(accuracy=0.82, balanced_accuracy=0.78, macro_auc=0.92),
    # is_malignant: P(malignant) at or above the highest threshold keeping sensitivity >= 0.85 on the pooled
    # out-of-fold predictions of recipe.cv_candidate (not on val/, which stays an untouched check).
    sensitivity_target=0.85,
    threshold_source="cv_oof",
    # CV fold models stated 0.9 where right ~0.8 (OOF ECE 0.091; the data owner measured 0.088 on 1.0.0).
    calibration_source="cv_oof",
    held_out_checks=(
        {
            "version": "1.0.0",
            "by": "the product owner",
            "data": "the data owner's held-out part: 151 images (80 benign, 44 malignant, 27 normal)",
            "accuracy": 0.808,
            "balanced_accuracy": 0.804,
            "macro_auc": 0.929,
            "expected_calibration_error": 0.088,
            "flag": {"rule": "top-1 class", "sensitivity": 0.77, "specificity": 0.91},
        },
    ),
    data_caveats=(
        "BUSI: 780 images from 600 patients without patient ids, so near-duplicate scans straddle the "
        "splits and figures are optimistic; some near-identical scans carry opposite labels."
    ),
    upload_hint="A single breast ultrasound image (grey, B-mode), as saved from the scanner.",
    main_limitation=(
        "It learnt from 780 images from one hospital, with no patient records to keep one woman's scans "
        "together, so its figures are likely better than it does on new patients."
    ),
    # Horizontal flips only: depth runs top to bottom in an ultrasound image.
    augmentation={
        "flip": "horizontal",
        "rotation": 0.03,
        "zoom": 0.1,
        "translation": 0.05,
        "contrast": 0.2,
        "brightness": 0.1,
    },
    dataset_licence="Published open access with its article (Al-Dhabyani et al. 2020); no formal licence found",
    cross_validation=CrossValidationPlan(
        sensitivity_floor=0.85,
        candidates={
            "baseline": {},
            # The source images are 256 px squares; 160 px throws away fine margin texture.
            "px224": {"input_size": 224},
            # The baseline again with another seed: a second look at the recipe's spread, and the fold models'
            # teacher files (written by every fold run since; the baseline's folds predate them) for the student.
            "seed7": {"seed": 7},
        },
    ),
)
