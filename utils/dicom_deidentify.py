"""A DICOM upload rewritten without who, where and when: PS3.15 Annex E's Basic Profile, by allow-list.

PS3.15 Table E.1-1 lists the attributes that may identify a patient, with an action for each (remove,
empty, dummy, replace UID). Rather than chase that list (and every private, retired or future
attribute a modality might write), the kept file is built afresh from what is known to be safe:

- the first frame's pixels, as stored (decoded if the file was compressed, so that nothing a
  codec's own segments carry travels on), with the attributes that say how to show them: pixel
  layout, modality and VOI LUTs, spacing, laterality and view;
- the Type 2 attributes of the image's IOD empty (action Z), the study, series and instance UIDs
  new (action U);
- PatientIdentityRemoved, LongitudinalTemporalInformationModified and the method used.

Everything else goes: names, ids, dates, free text, sequences (icon images and references
included), overlays, curves, private tags, the file meta's private information and source AE
titles; the 128-byte preamble is zeroed. Kept values are checked against their VR's repertoire
(codes, numbers), so that no text hides in an attribute that should hold a number or a code.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

ZERO_PREAMBLE = b"\x00" * 128
# LO: 64 characters at most.
DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Profile by allow-list; first frame only"
# CID 7050: the profile applied. No option is claimed: dates, descriptors and characteristics are removed,
# not retained or cleaned, and the pixels are not cleaned (a file declaring burned-in text is refused instead).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")

# Attributes that describe how the pixels are shown and nothing about whom, where or when. The pixel
# module's own attributes (rows, columns, bits, photometric interpretation...) are written afresh with the frame.
KEPT_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "Modality",
        "ImageType",
        "ConversionType",
        "PresentationIntentType",
        "BurnedInAnnotation",
        "RecognizableVisualFeatures",
        "LossyImageCompression",
        "LossyImageCompressionRatio",
        "LossyImageCompressionMethod",
        "PixelAspectRatio",
        "RescaleIntercept",
        "RescaleSlope",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "PresentationLUTShape",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "PixelSpacingCalibrationType",
        "Laterality",
        "ImageLaterality",
        "ViewPosition",
        "PatientOrientation",
        "BodyPartExamined",
        "SeriesNumber",
        "InstanceNumber",
        "RedPaletteColorLookupTableDescriptor",
        "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor",
        "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData",
    }
)
# The only sequences kept, and what their items may hold: the lookup tables that map stored values to what is shown.
KEPT_SEQUENCES = {
    "ModalityLUTSequence": frozenset({"LUTDescriptor", "ModalityLUTType", "LUTData"}),
    "VOILUTSequence": frozenset({"LUTDescriptor", "LUTData"}),
}
# Type 2 attributes of the image IODs we take (CR, DX, secondary capture): present and empty (action Z).
EMPTIED_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "Manufacturer",
)
# Type 1 UIDs: new ones (action U). No other UID is kept, so no reference can point back at the original.
REPLACED_UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

# What a kept value of these VRs may look like; a value that does not fit is dropped, never kept as text.
VALUE_PATTERNS = {
    "CS": re.compile(r"[A-Z0-9 _]{0,16}"),
    "DS": re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *"),
    "IS": re.compile(r" *[+-]?\d{1,12} *"),
    "UI": re.compile(r"[0-9.]{1,64}"),
}
# Transfer syntaxes whose codec may have dropped detail: JPEG baseline and extended, JPEG-LS near-lossless,
# JPEG 2000 and HTJ2K (either way; assumed lossy), MPEG and HEVC video.
LOSSY_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91"}
    | {"1.2.840.10008.1.2.4.203"}
    | {f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)}
)
# VRs of a kept attribute that hold numbers or lookup-table data, never text.
BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "OW", "OB", "US or SS", "US or OW", "US or SS or OW"})


def deidentified_file(source: Dataset, frame: np.ndarray) -> bytes:
    """The file to keep for source, whose first frame (as stored, colour as RGB) is frame: see the module."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    kept = FileDataset(None, {}, file_meta=FileMetaDataset(), preamble=ZERO_PREAMBLE)
    kept.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    _copy_allowed(source, kept)
    _set_frame(kept, source, frame)
    for keyword in EMPTIED_KEYWORDS:
        setattr(kept, keyword, "")
    for keyword in REPLACED_UID_KEYWORDS:
        setattr(kept, keyword, generate_uid())
    _record_method(kept)
    kept.file_meta.MediaStorageSOPClassUID = kept.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
    kept.file_meta.MediaStorageSOPInstanceUID = kept.SOPInstanceUID
    if "SOPClassUID" not in kept:
        kept.SOPClassUID = kept.file_meta.MediaStorageSOPClassUID  # secondary capture, the safe default
    out = io.BytesIO()
    kept.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _copy_allowed(source: Dataset, kept: Dataset) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    for keyword in KEPT_KEYWORDS:
        element = _safe_element(source, keyword)
        if element is not None:
            kept[element.tag] = element
    for keyword, item_keywords in KEPT_SEQUENCES.items():
        items = source.get(keyword) or []
        copies = []
        for item in items:
            copy = Dataset()
            for item_keyword in item_keywords:
                element = _safe_element(item, item_keyword)
                if element is not None:
                    copy[element.tag] = element
            copies.append(copy)
        if copies:
            setattr(kept, keyword, Sequence(copies))


def _safe_element(dataset: Dataset, keyword: str):
    """The element named keyword when its value fits its VR's repertoire; None when absent or when it does not."""
    from pydicom.dataelem import DataElement

    if keyword not in dataset:
        return None
    try:
        element = dataset.data_element(keyword)
        values = element.value if element.VM > 1 else [element.value]
    except Exception:  # a value pydicom cannot even convert: dropped like any other that does not fit
        return None
    if element.VR not in BINARY_VRS:
        pattern = VALUE_PATTERNS.get(element.VR)
        if pattern is None:
            return None  # text of any other VR could say anything
        if not all(pattern.fullmatch(str(value)) for value in values if value is not None):
            return None
    return DataElement(element.tag, element.VR, element.value)


def _set_frame(kept: Dataset, source: Dataset, frame: np.ndarray) -> None:
    samples = 3 if frame.ndim == 3 else 1
    photometric = "RGB" if samples == 3 else str(source.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if frame.dtype.itemsize > 2:  # pydicom writes 8 and 16 bits; 32-bit frames are refused before this point
        raise ValueError("unsupported bits allocated")
    bits_stored = min(int(source.get("BitsStored", frame.dtype.itemsize * 8)), frame.dtype.itemsize * 8)
    if samples == 3:
        bits_stored = frame.dtype.itemsize * 8
    kept.set_pixel_data(np.ascontiguousarray(frame), photometric, bits_stored, generate_instance_uid=False)
    if _was_lossy(source):
        kept.LossyImageCompression = "01"


def _was_lossy(source: Dataset) -> bool:
    """Whether the pixels have been through a lossy codec: said by the file, or by its transfer syntax."""
    meta = getattr(source, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return str(source.get("LossyImageCompression", "")).strip() == "01" or str(syntax or "") in LOSSY_SYNTAXES


def _record_method(kept: Dataset) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    code_value, scheme, meaning = BASIC_PROFILE_CODE
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = code_value, scheme, meaning
    kept.PatientIdentityRemoved = "YES"
    kept.DeidentificationMethod = DEIDENTIFICATION_METHOD
    kept.DeidentificationMethodCodeSequence = Sequence([code])
    kept.LongitudinalTemporalInformationModified = "REMOVED"
