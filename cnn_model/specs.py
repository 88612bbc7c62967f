"""What each modality's model is: its classes, their meaning, and its input.

The single source of truth for class names (exactly the dataset's folder names),
which classes count as malignant/abnormal, and how an image becomes model input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SKIN_LESION = "skin_lesion"
CHEST_XRAY = "chest_xray"
BREAST = "breast"
CERVICAL_CYTOLOGY = "cervical_cytology"


@dataclass(frozen=True)
class ClassSpec:
    name: str
    display_name: str
    description: str
    is_positive: bool  # malignant (skin, breast) or abnormal (chest, cervical)


@dataclass(frozen=True)
class ModalitySpec:
    name: str
    display_name: str
    classes: tuple[ClassSpec, ...]
    positive_flag: str  # the response field that carries is_positive: "is_malignant" or "is_abnormal"
    input_size: int  # square model input, pixels per side
    color_mode: str  # "RGB" or "L": what the image is reduced to before it is fed as 3 channels
    resize_mode: str  # "stretch" (plain resize, as the dataset was made) or "pad" (keep aspect ratio)
    group_rule: str  # how images are grouped so that no group straddles splits
    augmentation: dict = field(default_factory=dict)
    # The class mix the service expects to see, where it is known and differs from training
    # (see cnn_model.decision); None: serve the network's probabilities as they are.
    prevalence: dict[str, int] | None = None
    prevalence_source: str | None = None
    # Sensitivity on val that sets the malignant/abnormal threshold; None: the top-1 class decides.
    sensitivity_target: float | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def positive_classes(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.is_positive)

    def class_spec(self, name: str) -> ClassSpec:
        for spec in self.classes:
            if spec.name == name:
                return spec
        raise KeyError(name)


SPECS: dict[str, ModalitySpec] = {
    SKIN_LESION: ModalitySpec(
        name=SKIN_LESION,
        display_name="Skin lesion (dermatoscopic photo)",
        classes=(
            ClassSpec(
                "akiec",
                "Actinic keratosis / intraepithelial carcinoma",
                "A rough, scaly sun-damage lesion that can be an early, superficial skin cancer.",
                True,
            ),
            ClassSpec(
                "bcc", "Basal cell carcinoma", "The most common skin cancer; it grows slowly and rarely spreads.", True
            ),
            ClassSpec(
                "bkl",
                "Benign keratosis-like lesion",
                "A harmless growth such as a seborrhoeic keratosis or solar lentigo.",
                False,
            ),
            ClassSpec("df", "Dermatofibroma", "A harmless firm bump in the skin, often after a small injury.", False),
            ClassSpec(
                "mel", "Melanoma", "A cancer of pigment cells that needs prompt assessment by a dermatologist.", True
            ),
            ClassSpec(
                "nv", "Melanocytic nevus (mole)", "A common mole made of pigment cells, usually harmless.", False
            ),
            ClassSpec("vasc", "Vascular lesion", "A blood-vessel lesion such as an angioma; usually harmless.", False),
        ),
        positive_flag="is_malignant",
        input_size=192,  # close to the 200x150 source width; 160 px scored lower (model 1.0.0)
        color_mode="RGB",
        resize_mode="stretch",
        group_rule="lesion_id from metadata.csv (several photos of one lesion stay together)",
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
    ),
    CHEST_XRAY: ModalitySpec(
        name=CHEST_XRAY,
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
        group_rule="patient_id from labels.csv",
        # No flips: left/right anatomy (heart side, markers) is meaningful on a radiograph.
        augmentation={
            "flip": None,
            "rotation": 0.02,
            "zoom": 0.1,
            "translation": 0.05,
            "contrast": 0.15,
            "brightness": 0.1,
        },
    ),
    BREAST: ModalitySpec(
        name=BREAST,
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
        group_rule="image path (BUSI has no patient ids)",
        # Horizontal flips only: depth runs top to bottom in an ultrasound image.
        augmentation={
            "flip": "horizontal",
            "rotation": 0.03,
            "zoom": 0.1,
            "translation": 0.05,
            "contrast": 0.2,
            "brightness": 0.1,
        },
    ),
    CERVICAL_CYTOLOGY: ModalitySpec(
        name=CERVICAL_CYTOLOGY,
        display_name="Cervical cytology (single Pap smear cell)",
        classes=(
            ClassSpec(
                "carcinoma_in_situ",
                "Carcinoma in situ",
                "Cancer cells confined to the surface layer of the cervix (HSIL-like).",
                True,
            ),
            ClassSpec(
                "light_dysplastic",
                "Mild dysplasia",
                "Mildly abnormal squamous cell (roughly LSIL); often clears on its own.",
                True,
            ),
            ClassSpec(
                "moderate_dysplastic",
                "Moderate dysplasia",
                "Moderately abnormal squamous cell (roughly HSIL) that needs follow-up.",
                True,
            ),
            ClassSpec(
                "normal_columnar", "Normal columnar cell", "A normal glandular cell from the cervical canal.", False
            ),
            ClassSpec(
                "normal_intermediate",
                "Normal intermediate cell",
                "A normal squamous cell from the middle layer of the epithelium.",
                False,
            ),
            ClassSpec(
                "normal_superficial",
                "Normal superficial cell",
                "A normal squamous cell from the surface layer of the epithelium.",
                False,
            ),
            ClassSpec(
                "severe_dysplastic",
                "Severe dysplasia",
                "Severely abnormal squamous cell (HSIL) that needs prompt follow-up.",
                True,
            ),
        ),
        positive_flag="is_abnormal",
        input_size=160,
        color_mode="RGB",
        # Padding keeps the cell's shape and the crop's scale; stretching would distort both
        # in a class-dependent way (small dysplastic crops vs large superficial ones).
        resize_mode="pad",
        group_rule="first number of the Herlev file name (cells cut from the same smear image)",
        augmentation={
            "flip": "horizontal_and_vertical",
            "rotation": 0.5,
            "zoom": 0.1,
            "translation": 0.05,
            "contrast": 0.15,
            "brightness": 0.1,
            "saturation": 0.15,
            "hue": 0.03,
        },
    ),
}

MODALITIES: tuple[str, ...] = tuple(SPECS)


def get_spec(modality: str) -> ModalitySpec:
    try:
        return SPECS[modality]
    except KeyError:
        raise ValueError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}") from None
