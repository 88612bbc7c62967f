"""DICOM uploads: the first frame as an 8-bit picture a model reads, and the file stripped of who it is about.

Pixels: the modality LUT (rescale slope and intercept, or a LUT), then the VOI LUT or the first
window (linear, linear exact or sigmoid, per PS3.3 C.11.2), else the frame's own range; MONOCHROME1
is inverted so that bone is always bright. Colour files become RGB.

Identity: the stored file keeps the pixels and the attributes that describe the image, and loses
what says whom, where and when (PS3.15's Basic Application Level Confidentiality Profile, as far as
a server can apply it): names of people, ids, dates of birth, addresses, institutions, devices,
free-text comments, private tags, overlays; the UIDs are replaced. A file that declares identifying
text burned into its pixels is refused, since its pixels cannot be cleaned here. Nothing read from
a file is ever put in an error message.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from utils.errors import ImageTooLarge, InvalidImage, UnsupportedMediaType, ValidationFailed

# pydicom is imported when a DICOM file arrives, not at start-up: every worker would otherwise pay
# about 10 MB and 0.16 s for a format most deployments never see.
if TYPE_CHECKING:
    from pydicom.dataset import Dataset

PREAMBLE_LENGTH = 128
MAGIC = b"DICM"
CONTENT_TYPE = "application/dicom"
DEIDENTIFICATION_METHOD = "PS3.15 Basic Profile, applied in part by MedSight"  # LO: 64 characters at most

# Removed wherever they occur: people, places, ids, devices, dates and free text (PS3.15 Table E.1-1).
IDENTIFYING_KEYWORDS = frozenset(
    {
        "AccessionNumber",
        "AcquisitionComments",
        "AcquisitionDate",
        "AcquisitionDateTime",
        "AcquisitionTime",
        "AdditionalPatientHistory",
        "AdmissionID",
        "AdmittingDiagnosesDescription",
        "Allergies",
        "BranchOfService",
        "ContentDate",
        "ContentTime",
        "CountryOfResidence",
        "CurrentPatientLocation",
        "DerivationDescription",
        "DeviceSerialNumber",
        "DeviceUID",
        "EthnicGroup",
        "FillerOrderNumberImagingServiceRequest",
        "ImageComments",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "InstanceCreatorUID",
        "InstitutionAddress",
        "InstitutionCodeSequence",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "IssuerOfPatientID",
        "MedicalAlerts",
        "MedicalRecordLocator",
        "MilitaryRank",
        "NameOfPhysiciansReadingStudy",
        "Occupation",
        "OperatorsName",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientAge",
        "PatientBirthDate",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientInsurancePlanCodeSequence",
        "PatientMotherBirthName",
        "PatientReligiousPreference",
        "PatientSize",
        "PatientTelephoneNumbers",
        "PatientWeight",
        "PerformedProcedureStepDescription",
        "PerformedProcedureStepID",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformingPhysicianName",
        "PhysiciansOfRecord",
        "PlacerOrderNumberImagingServiceRequest",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "RegionOfResidence",
        "RequestAttributesSequence",
        "RequestedProcedureDescription",
        "RequestingPhysician",
        "RequestingService",
        "ResponsibleOrganization",
        "ResponsiblePerson",
        "ScheduledPerformingPhysicianName",
        "SeriesDate",
        "SeriesDescription",
        "SeriesTime",
        "StationName",
        "StudyDescription",
        "TextComments",
    }
)
# Type 2 attributes: kept, but empty (the file stays valid for its IOD).
EMPTIED_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientSex",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyTime",
    "StudyID",
)
REPLACED_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


@dataclass(frozen=True)
class DicomImage:
    """A decoded DICOM upload: its first frame for the models, and the file with its identity removed."""

    image: Image.Image
    deidentified: bytes
    frames: int


def is_dicom(head: bytes) -> bool:
    """Whether the leading bytes are a DICOM file's: a 128-byte preamble, then DICM."""
    return head[PREAMBLE_LENGTH : PREAMBLE_LENGTH + len(MAGIC)] == MAGIC


def read_dicom(data: bytes, *, max_pixels: int) -> DicomImage:
    """Decode a DICOM file's first frame and de-identify the file; a domain error says what is wrong."""
    from pydicom import config as pydicom_config
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    # pydicom warns (and logs) about malformed values quoting them; they may be names or dates of birth.
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        dataset = dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidImage("The DICOM file could not be read; it may be truncated or corrupt.") from exc
    if "PixelData" not in dataset:
        raise InvalidImage(
            "The DICOM file holds no image (it may be a report, a structured document or a waveform).",
            details={"format": "DICOM", "reason": "no_pixel_data"},
        )
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        raise ValidationFailed(
            "The DICOM file says identifying text is burned into its pixels; MedSight does not keep such images.",
            code="dicom_burned_in_annotation",
        )
    rows, columns = int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))
    if rows * columns > max_pixels:
        raise ImageTooLarge(
            f"The image is {columns}×{rows} pixels; the limit is {max_pixels} pixels.",
            details={"width": columns, "height": rows, "max_pixels": max_pixels},
        )
    image = _first_frame(dataset)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    return DicomImage(image=image, deidentified=_deidentified(dataset), frames=frames)


def _first_frame(dataset: Dataset) -> Image.Image:
    from pydicom.pixels import apply_modality_lut, pixel_array

    meta = getattr(dataset, "file_meta", None)
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    try:
        frame = pixel_array(dataset, index=0)
    except (NotImplementedError, RuntimeError) as exc:
        # A compressed syntax without a decoder here (JPEG lossless, JPEG-LS, JPEG 2000 without a plugin).
        name = transfer_syntax.name if transfer_syntax is not None else "unknown"
        raise UnsupportedMediaType(
            f"DICOM files compressed as {name} cannot be decoded here; send it uncompressed, RLE or JPEG baseline.",
            details={"format": "DICOM", "transfer_syntax": str(transfer_syntax or "")},
        ) from exc
    except Exception as exc:
        raise InvalidImage(
            "The DICOM file's pixels could not be decoded; it may be truncated or corrupt.",
            details={"format": "DICOM"},
        ) from exc
    samples = int(dataset.get("SamplesPerPixel", 1))
    if samples == 3:
        return Image.fromarray(_to_uint8(frame.astype(np.float64), (0, float(2 ** int(dataset.BitsStored) - 1))), "RGB")
    if samples != 1 or frame.ndim != 2:
        raise InvalidImage("The DICOM image has an unsupported pixel layout.", details={"format": "DICOM"})
    values = apply_modality_lut(frame, dataset).astype(np.float64)
    scaled = _voi(values, dataset)
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: the lowest value is white
    return Image.fromarray(np.round(scaled * 255.0).astype(np.uint8), "L")


def _first(value) -> float:
    """The first of a multi-valued attribute (several windows may be offered), as a float."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _voi(values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Values of interest mapped to 0..1: the VOI LUT, else the first window, else the frame's own range."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" in dataset:
        mapped = apply_voi_lut(values, dataset, index=0).astype(np.float64)
        descriptor = dataset.VOILUTSequence[0].LUTDescriptor
        top = float(2 ** int(descriptor[2]) - 1) if int(descriptor[2]) > 0 else float(mapped.max() or 1)
        return np.clip(mapped / top, 0.0, 1.0)
    if "WindowCenter" in dataset and "WindowWidth" in dataset:
        center, width = _first(dataset.WindowCenter), _first(dataset.WindowWidth)
        function = str(dataset.get("VOILUTFunction", "LINEAR")).upper()
        if function == "SIGMOID" and width > 0:
            return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
        if function == "LINEAR_EXACT" and width > 0:
            return np.clip((values - center) / width + 0.5, 0.0, 1.0)
        if width >= 1:
            return np.clip((values - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5, 0.0, 1.0)
    return _to_uint8(values, (float(values.min()), float(values.max()))) / 255.0


def _to_uint8(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.round(np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _deidentified(dataset: Dataset) -> bytes:
    """The file without its identifying attributes (see the module's docstring), as DICOM bytes."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset.remove_private_tags()

    def strip(ds: Dataset, element) -> None:
        group = element.tag.group
        if element.VR == "PN" or element.keyword in IDENTIFYING_KEYWORDS or 0x5000 <= group <= 0x60FF:
            if element.keyword not in EMPTIED_KEYWORDS:
                del ds[element.tag]

    dataset.walk(strip)
    for keyword in EMPTIED_KEYWORDS:
        if keyword in dataset:
            dataset.data_element(keyword).value = ""
    for keyword in REPLACED_UID_KEYWORDS:
        if keyword in dataset:
            setattr(dataset, keyword, generate_uid())
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
    for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle", "ReceivingApplicationEntityTitle"):
        if keyword in meta:
            del meta[keyword]
    if "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
