"""DICOM files made here from the committed chest X-ray JPEGs, the way modalities write them (for the tests)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

COMPUTED_RADIOGRAPHY_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
BASIC_TEXT_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.11"
# What the file says about the patient and the place; none of it may be stored, logged or echoed.
IDENTITY = {
    "PatientName": "Doe^Jane^Quinn",
    "PatientID": "MRN-5551234",
    "PatientBirthDate": "19700214",
    "InstitutionName": "Saint Example General Hospital",
    "InstitutionAddress": "12 Harbour Road, Exampletown",
    "ReferringPhysicianName": "Whooper^Gregory",
    "OperatorsName": "Radiographer^Rita",
    "StationName": "XRAYROOM7",
    "AccessionNumber": "ACC9988776",
    "OtherPatientIDs": "NHS-4445556666",
    "PatientAddress": "34 Elm Street, Exampletown",
}
PRIVATE_TEXT = "PrivateVendorPatientNote-Jane"


def gray_pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.int64)


def file_dataset(sop_class: str, transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR"
    ds.StudyDate, ds.StudyTime = "20240102", "101500"
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)
    block = ds.private_block(0x0011, "EXAMPLE VENDOR", create=True)
    block.add_new(0x01, "LO", PRIVATE_TEXT)
    return ds


def encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def xray_dicom(
    path: Path,
    *,
    bits: int = 16,
    photometric: str = "MONOCHROME2",
    signed: bool = False,
    window: bool = True,
    frames: int = 1,
    burned_in: bool = False,
) -> bytes:
    """A DICOM of the X-ray at path whose windowed first frame is the JPEG's own grey levels again.

    bits 8, 12 or 16 stored; signed keeps the values in int16 with a rescale intercept that brings
    them back; MONOCHROME1 stores them inverted. With window, the window maps them back onto 0..255
    exactly; without, the viewer's rule (the frame's own range) applies. Extra frames are black.
    """
    gray = gray_pixels(path)
    top = 2**bits - 1
    stored = np.round(gray * top / 255).astype(np.int64)
    if photometric == "MONOCHROME1":
        stored = top - stored
    ds = file_dataset(COMPUTED_RADIOGRAPHY_STORAGE)
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit = bits, bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    if signed:
        offset = 2 ** (bits - 1)
        stored = stored - offset
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = str(offset), "1", "US"
    if window:
        ds.WindowCenter, ds.WindowWidth = str((top + 1) // 2), str(top + 1)
    if burned_in:
        ds.BurnedInAnnotation = "YES"
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(ds.BitsAllocated, signed)]
    pixels = np.concatenate([stored[None]] + [np.zeros_like(stored)[None]] * (frames - 1)).astype(dtype)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    return encoded(ds)


def report_dicom() -> bytes:
    """A DICOM object that is no image: a basic text structured report."""
    ds = file_dataset(BASIC_TEXT_SR_STORAGE)
    ds.Modality = "SR"
    ds.ValueType, ds.CompletionFlag = "CONTAINER", "COMPLETE"
    return encoded(ds)


# -- a file that carries a marker in every attribute PS3.15 Table E.1-1 lists ----------------------------

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"})
BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
PREAMBLE_MARKER = b"PHI-PREAMBLE Doe^Jane MRN-5551234".ljust(128)


def table_e1_1_tags() -> list[int]:
    """Every attribute of PS3.15 Table E.1-1 as a tag pydicom can write, taken from an independent implementation
    (dicom-anonymizer's copy of the newest table); repeating groups (curves, overlays) in their first group.
    Command set elements cannot be in a file and the file meta's are marked apart."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    from pydicom.datadict import dictionary_VR
    from pydicom.tag import Tag

    databases = sorted(p.stem for p in _databases_dir().glob("dicomfields_*.py"))
    table = dicom_anonymization_database_selector(databases[-1])
    tags = set()
    for entry in table["ALL_TAGS"]:
        tag = Tag(entry[0], entry[1])
        if tag.group in (0x0000, 0x0002):  # command sets are never in a file; the file meta is marked apart
            continue
        try:
            dictionary_VR(tag)
        except KeyError:
            continue
        tags.add(int(tag))
    return sorted(tags)


def _databases_dir() -> Path:
    import dicomanonymizer.dicom_anonymization_databases as databases

    return Path(databases.__file__).parent


def marked_xray_dicom(path: Path) -> tuple[bytes, dict[int, bytes], set[int]]:
    """xray_dicom(path) with a distinct marker in every Table E.1-1 attribute it can hold, the preamble, the file
    meta's private information, a private tag and an icon image: the file, each text marker by tag (what must
    never be found again), and every tag the table lists (what may stay only emptied or replaced)."""
    from pydicom import config as pydicom_config
    from pydicom import dcmread

    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    ds = dcmread(io.BytesIO(xray_dicom(path)))
    markers: dict[int, bytes] = {}
    tags = table_e1_1_tags()
    for number, tag in enumerate(tags):
        marker = f"MKR{number:04d}Z"
        value = _marked_value(tag, marker)
        if value is None:
            continue
        vr, content = value
        ds.add_new(tag, vr, content)
        if vr in TEXT_VRS or vr in BYTES_VRS or vr == "SQ":
            markers[tag] = marker.encode()
        elif vr == "UI":
            markers[tag] = content.encode()
    ds.IconImageSequence = _icon_image("MKRICONZ")
    markers[0x00880200] = b"MKRICONZ"
    ds.preamble = PREAMBLE_MARKER
    ds.file_meta.PrivateInformationCreatorUID = "1.2.999.424242"
    ds.file_meta.PrivateInformation = b"MKRMETAZ Jane Doe"
    markers[0x00020102] = b"MKRMETAZ"
    return encoded(ds), markers, set(tags)


def _marked_value(tag: int, marker: str) -> tuple[str, object] | None:
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    vr = dictionary_VR(tag).split(" or ")[0]
    if vr in TEXT_VRS:
        return vr, marker
    if vr in BYTES_VRS:
        return vr, marker.encode()
    if vr == "UI":
        return vr, f"1.2.999.{tag}"
    if vr in ("DS", "IS"):
        return vr, str(700_000 + tag % 100_000)
    if vr in ("US", "SS", "UL", "SL", "SV", "UV", "FL", "FD"):
        return vr, 7
    if vr == "AT":
        return vr, 0x00100010
    if vr == "SQ":
        item = Dataset()
        item.CodeMeaning = marker
        item.PatientName = marker
        return vr, Sequence([item])
    return None


def _icon_image(marker: str):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    icon = Dataset()
    icon.Rows, icon.Columns, icon.SamplesPerPixel = 4, 4, 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = marker.encode().ljust(16, b"\x00")
    return Sequence([icon])
