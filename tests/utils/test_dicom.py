"""DICOM uploads (utils.dicom through utils.images): pixels as a viewer shows them, identity removed, clear refusals.

The files are made by tests.support.dicom from the committed chest X-ray JPEGs.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, JPEGLosslessSV1

from tests.support.dicom import (
    COMPUTED_RADIOGRAPHY_STORAGE,
    IDENTITY,
    PRIVATE_TEXT,
    encoded,
    file_dataset,
    gray_pixels,
    report_dicom,
    xray_dicom,
)
from tests.support.images import sample_image
from utils.errors import AppError
from utils.images import validate_image_upload

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
XRAY = sample_image("chest_xray")


def refused(data: bytes, **limits) -> AppError:
    with pytest.raises(AppError) as caught:
        validate_image_upload(io.BytesIO(data), **{**LIMITS, **limits})
    return caught.value


@pytest.mark.parametrize(
    "encoding",
    [
        {"bits": 8},
        {"bits": 12},
        {"bits": 16},
        {"bits": 16, "signed": True},
        {"bits": 8, "photometric": "MONOCHROME1"},
        {"bits": 12, "photometric": "MONOCHROME1"},
        {"bits": 16, "photometric": "MONOCHROME1"},
    ],
    ids=lambda e: "-".join(str(v) for v in e.values()),
)
def test_windowed_pixels_are_the_xrays_own_grey_levels(encoding):
    result = validate_image_upload(io.BytesIO(xray_dicom(XRAY, **encoding)), **LIMITS)
    assert result.format == "DICOM" and result.image.mode == "L"
    assert np.array_equal(np.asarray(result.image, dtype=np.int64), gray_pixels(XRAY))


def test_without_a_window_the_frames_own_range_is_shown():
    result = validate_image_upload(io.BytesIO(xray_dicom(XRAY, window=False)), **LIMITS)
    pixels = np.asarray(result.image)
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.corrcoef(pixels.ravel(), gray_pixels(XRAY).ravel())[0, 1] > 0.999


def test_only_the_first_frame_is_read():
    result = validate_image_upload(io.BytesIO(xray_dicom(XRAY, frames=3)), **LIMITS)
    assert np.array_equal(np.asarray(result.image, dtype=np.int64), gray_pixels(XRAY))


def test_the_photo_is_a_png_preview_and_the_original_is_kept_without_identity():
    upload = xray_dicom(XRAY, bits=12)
    result = validate_image_upload(io.BytesIO(upload), **LIMITS)
    assert result.content_type == "image/png" and result.data.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(result.data)).size == (result.width, result.height)
    assert result.original_content_type == "application/dicom"
    for value in [*IDENTITY.values(), PRIVATE_TEXT]:
        assert value.encode() in upload  # the test file really carries it
        assert value.encode() not in result.original and value.encode() not in result.data
    kept, sent = dcmread(io.BytesIO(result.original)), dcmread(io.BytesIO(upload))
    assert kept.PatientIdentityRemoved == "YES" and str(kept.PatientName) == "" and kept.PatientID == ""
    assert kept.PatientBirthDate == "" and "InstitutionName" not in kept and "OperatorsName" not in kept
    assert not any(element.tag.is_private for element in kept)
    assert kept.SOPInstanceUID != sent.SOPInstanceUID and kept.StudyInstanceUID != sent.StudyInstanceUID
    assert kept.file_meta.MediaStorageSOPInstanceUID == kept.SOPInstanceUID
    assert np.array_equal(kept.pixel_array, sent.pixel_array)


def test_a_jpeg_baseline_dicom_is_decoded():
    ds = file_dataset(COMPUTED_RADIOGRAPHY_STORAGE, JPEGBaseline8Bit)
    _describe_8_bit_grey(ds)
    jpeg = io.BytesIO()
    Image.open(XRAY).save(jpeg, "JPEG", quality=95)
    ds.PixelData = encapsulate([jpeg.getvalue()])
    result = validate_image_upload(io.BytesIO(encoded(ds)), **LIMITS)
    assert np.abs(np.asarray(result.image, dtype=np.int64) - gray_pixels(XRAY)).mean() < 3


def test_a_compression_without_a_decoder_here_is_415_naming_it():
    ds = file_dataset(COMPUTED_RADIOGRAPHY_STORAGE, JPEGLosslessSV1)
    _describe_8_bit_grey(ds)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3 not really lossless"])
    error = refused(encoded(ds))
    assert (error.status, error.code) == (415, "unsupported_media_type")
    assert error.details["transfer_syntax"] == JPEGLosslessSV1


def test_a_dicom_without_an_image_is_422():
    error = refused(report_dicom())
    assert (error.status, error.code) == (422, "invalid_image")
    assert "no image" in error.message


def test_a_truncated_dicom_is_422():
    error = refused(xray_dicom(XRAY)[:4000])
    assert (error.status, error.code) == (422, "invalid_image")


def test_burned_in_identity_is_refused():
    error = refused(xray_dicom(XRAY, burned_in=True))
    assert (error.status, error.code) == (422, "dicom_burned_in_annotation")


def test_too_many_pixels_is_refused_before_decoding():
    error = refused(xray_dicom(XRAY), max_pixels=10_000)
    assert (error.status, error.code) == (422, "image_too_large")


def test_no_error_quotes_the_file():
    for data in (report_dicom(), xray_dicom(XRAY)[:4000], xray_dicom(XRAY, burned_in=True)):
        error = refused(data)
        text = f"{error.message} {error.details}"
        assert not any(value in text for value in IDENTITY.values())


def _describe_8_bit_grey(ds) -> None:
    ds.Rows, ds.Columns = gray_pixels(XRAY).shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.WindowCenter, ds.WindowWidth = "128", "256"  # the identity window of 8-bit values


def test_a_multi_frame_file_is_kept_with_its_first_frame_only():
    upload = xray_dicom(XRAY, frames=3)
    kept = dcmread(io.BytesIO(validate_image_upload(io.BytesIO(upload), **LIMITS).original))
    assert "NumberOfFrames" not in kept
    assert np.array_equal(kept.pixel_array, dcmread(io.BytesIO(upload)).pixel_array[0])


def test_a_jpeg_colour_file_is_kept_uncompressed_rgb_and_marked_lossy():
    ds = file_dataset(COMPUTED_RADIOGRAPHY_STORAGE, JPEGBaseline8Bit)
    rgb = Image.open(XRAY).convert("RGB")
    ds.Rows, ds.Columns = rgb.height, rgb.width
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    jpeg = io.BytesIO()
    rgb.save(jpeg, "JPEG", quality=95, comment=b"Doe^Jane JPEG comment")
    ds.PixelData = encapsulate([jpeg.getvalue()])
    result = validate_image_upload(io.BytesIO(encoded(ds)), **LIMITS)
    assert b"Doe^Jane" not in result.original
    kept = dcmread(io.BytesIO(result.original))
    assert kept.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and kept.PhotometricInterpretation == "RGB"
    assert kept.LossyImageCompression == "01" and kept.pixel_array.shape == (rgb.height, rgb.width, 3)
