"""What a prediction says, in coded terms shared by its DICOM and FHIR forms."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

# SNOMED CT, as DICOM (PS3.16) and FHIR name it.
SNOMED_SCHEME = "SCT"
SNOMED_SYSTEM = "http://snomed.info/sct"
# MedSight's own coding scheme, for the classes SNOMED CT has no concept for as a whole and for what is ours
# alone (the flag, the prediction set): a private scheme by PS3.16 8.2 ("99" + a name), and its FHIR system.
LOCAL_SCHEME = "99MEDSIGHT"
LOCAL_SYSTEM = "urn:medsight:codes"
MANUFACTURER = "MedSight"
# The root of UIDs derived from a UUID (PS3.5 B.2): every UID of a prediction's objects is one, made from
# the prediction's id and what the object is, so that each download of them names the same instances.
UUID_UID_ROOT = "2.25"


@dataclass(frozen=True)
class Concept:
    """A coded concept: its code, the scheme it is from (SCT or 99MEDSIGHT) and its meaning."""

    code: str
    scheme: str
    meaning: str

    @property
    def system(self) -> str:
        return SNOMED_SYSTEM if self.scheme == SNOMED_SCHEME else LOCAL_SYSTEM


@dataclass(frozen=True)
class ClassProbability:
    name: str
    concept: Concept
    probability: float


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    sha256: str
    card_url: str


@dataclass(frozen=True)
class FindingReport:
    """One prediction: the finding, every class's probability, the flag and the prediction set, by which model."""

    prediction_id: uuid.UUID
    created_at: datetime
    subject_id: uuid.UUID  # the owner's opaque id: no name, email or date of birth travels
    modality: str
    modality_display: str
    finding: ClassProbability
    classes: tuple[ClassProbability, ...]
    flag: Concept  # what the flag says (e.g. is_malignant "Flagged as malignant")
    flagged: bool
    prediction_set: tuple[ClassProbability, ...] | None
    set_coverage: float | None
    certainty: str | None
    model: ModelIdentity
    # A clinician's verdict on it, if any: "agree", "disagree" or "amend", and the finding they gave.
    review_verdict: str | None = None
    review_finding: str | None = None

    def uid(self, purpose: str) -> str:
        """The UID of this prediction's object named purpose: the same on every call."""
        return uid_from(self.prediction_id, purpose)

    def local(self, code: str, meaning: str) -> Concept:
        """A concept of MedSight's scheme about this modality."""
        return Concept(f"{self.modality}.{code}", LOCAL_SCHEME, meaning)


def uid_from(base: uuid.UUID, purpose: str) -> str:
    """A DICOM UID under 2.25 from a name-based UUID of base and purpose."""
    return f"{UUID_UID_ROOT}.{uuid.uuid5(base, purpose).int}"


def class_concept(modality: str, name: str, display_name: str, snomed_ct: tuple[str, str] | None) -> Concept:
    """The concept of a modality's class: its SNOMED CT concept if it has one, else MedSight's."""
    if snomed_ct is not None:
        return Concept(snomed_ct[0], SNOMED_SCHEME, snomed_ct[1])
    return Concept(f"{modality}.{name}", LOCAL_SCHEME, display_name)
