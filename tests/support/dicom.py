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
