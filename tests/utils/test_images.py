"""Upload validation: what a client sends decides the answer by its bytes, never by its name."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile
from werkzeug.datastructures import FileStorage

from cnn_model.preprocessing import normalise_mode
from utils.errors import AppError
from utils.images import ACCEPTED_FORMATS, SUPPORTED_FORMATS, validate_image_upload

LIMITS = {"max_bytes": 2 * 1024 * 1024, "max_pixels": 4_000_000}


def _encode(image: Image.Image, image_format: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_args)
    return buffer.getvalue()


def _two_colour_image(size=(20, 10)) -> Image.Image:
    """Left half red, right half blue: orientation mistakes show up as colours in the wrong place."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width×height RGB pixels but carries almost no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _error_of(data, **overrides) -> AppError:
    with pytest.raises(AppError) as caught:
        validate_image_upload(io.BytesIO(data) if isinstance(data, bytes) else data, **{**LIMITS, **overrides})
    return caught.value


@pytest.mark.parametrize("image_format", SUPPORTED_FORMATS)
def test_each_accepted_format_round_trips(image_format):
    data = _encode(_two_colour_image(), image_format)
    result = validate_image_upload(io.BytesIO(data), **LIMITS)
    assert result.format == image_format
    assert (result.width, result.height) == (20, 10) == result.image.size
    assert result.image.mode == "RGB"
    kept = Image.open(io.BytesIO(result.data))
    assert kept.format == image_format and np.array_equal(np.asarray(kept.convert("RGB")), np.asarray(result.image))
    if image_format in ("JPEG", "PNG"):
        assert result.data == data  # nothing to strip: rewritten bit for bit
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert result.content_type.startswith("image/")
    red, _, blue = result.image.getpixel((2, 5))
    assert red > 200 and blue < 60


def test_magic_bytes_beat_a_lying_filename_and_content_type():
    png = _encode(_two_colour_image(), "PNG")
    upload = FileStorage(io.BytesIO(png), filename="scan.jpg", content_type="image/jpeg")
    assert validate_image_upload(upload, **LIMITS).format == "PNG"


def test_text_file_renamed_jpg_is_415_listing_accepted_formats():
    upload = FileStorage(io.BytesIO(b"hello, this is not an image\n" * 10), filename="x.jpg", content_type="image/jpeg")
    error = _error_of(upload)
    assert (error.status, error.code) == (415, "unsupported_media_type")
    assert error.details["accepted_formats"] == sorted(ACCEPTED_FORMATS)
    assert "JPEG" in error.message


def test_format_outside_allowed_list_is_415():
    webp = _encode(_two_colour_image(), "WEBP")
    error = _error_of(webp, allowed_formats=["jpeg", "png"])
    assert (error.status, error.code) == (415, "unsupported_media_type")
    assert error.details == {"accepted_formats": ["JPEG", "PNG"], "detected_format": "WEBP"}


def test_empty_file_is_422_empty_file():
    error = _error_of(b"")
    assert (error.status, error.code) == (422, "empty_file")


def test_truncated_jpeg_is_422_invalid_image():
    jpeg = _encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG", quality=95)
    error = _error_of(jpeg[: len(jpeg) // 2])
    assert (error.status, error.code) == (422, "invalid_image")


def test_garbage_behind_valid_magic_bytes_is_422_invalid_image():
    error = _error_of(b"BM" + b"\x00" * 100)
    assert (error.status, error.code) == (422, "invalid_image")


@pytest.mark.parametrize("width, height", [(3000, 3000), (100_000, 100_000)])
def test_pixel_bomb_is_422_before_any_pixel_is_decoded(monkeypatch, width, height):
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image))
    error = _error_of(_png_header_only(width, height), max_pixels=1_000_000)
    assert (error.status, error.code) == (422, "image_too_large")
    assert decoded == []


class _EndlessStream:
    """A never-ending upload that counts what was read from it."""

    def __init__(self):
        self.bytes_read = 0

    def read(self, size=-1):
        assert size is not None and size > 0, "the validator must never ask for the whole stream"
        self.bytes_read += size
        return b"\xff" * size


def test_oversize_stream_is_413_after_reading_just_past_the_cap():
    stream = _EndlessStream()
    error = _error_of(stream, max_bytes=100_000)
    assert (error.status, error.code) == (413, "payload_too_large")
    assert error.details == {"max_bytes": 100_000}
    assert stream.bytes_read == 100_001


def test_file_exactly_at_the_cap_is_accepted():
    data = _encode(_two_colour_image(), "PNG")
    assert validate_image_upload(io.BytesIO(data), max_bytes=len(data), max_pixels=1000).data == data


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    jpeg = _encode(_two_colour_image((20, 10)), "JPEG", exif=exif, quality=95)
    result = validate_image_upload(io.BytesIO(jpeg), **LIMITS)
    assert (result.width, result.height) == (10, 20)
    top_red, _, top_blue = result.image.getpixel((5, 2))
    bottom_red, _, bottom_blue = result.image.getpixel((5, 17))
    assert top_red > 200 and top_blue < 60
    assert bottom_blue > 200 and bottom_red < 60


@pytest.mark.parametrize("orientation, upright", [(1, (800, 400)), (6, (400, 800))])
def test_a_large_jpeg_is_decoded_smaller_when_asked_and_described_at_full_size(orientation, upright):
    exif = Image.Exif()
    exif[0x0112] = orientation
    jpeg = _encode(_two_colour_image((800, 400)), "JPEG", exif=exif, quality=95)
    result = validate_image_upload(io.BytesIO(jpeg), **LIMITS, decode_size=150)
    # libjpeg's scaled decoding: the largest of 1/2, 1/4, 1/8 that keeps both sides at least 150.
    assert result.image.size == (upright[0] // 2, upright[1] // 2)
    assert (result.width, result.height) == upright == Image.open(io.BytesIO(result.data)).size


def test_decode_size_leaves_small_jpegs_and_other_formats_whole():
    image = _two_colour_image((300, 200))
    for data in (_encode(image, "JPEG"), _encode(image, "PNG")):
        assert validate_image_upload(io.BytesIO(data), **LIMITS, decode_size=160).image.size == (300, 200)


def test_rgba_is_flattened_to_rgb_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    image.putpixel((0, 0), (0, 0, 0, 0))
    result = normalise_mode(validate_image_upload(io.BytesIO(_encode(image, "PNG")), **LIMITS).image)
    assert result.mode == "RGB"
    assert result.getpixel((0, 0)) == (255, 255, 255)
    assert result.getpixel((1, 1)) == (255, 0, 0)


def test_palette_images_become_rgb_with_transparency_flattened():
    plain = _two_colour_image().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert normalise_mode(validate_image_upload(io.BytesIO(_encode(plain, "PNG")), **LIMITS).image).mode == "RGB"
    transparent = plain.copy()
    transparent.info["transparency"] = transparent.getpixel((0, 0))
    result = normalise_mode(validate_image_upload(io.BytesIO(_encode(transparent, "PNG")), **LIMITS).image)
    assert result.mode == "RGB"
    assert result.getpixel((0, 0)) == (255, 255, 255)


def test_grayscale_stays_single_channel():
    for mode in ("L", "LA", "1"):
        image = Image.new(mode, (8, 8))
        assert normalise_mode(validate_image_upload(io.BytesIO(_encode(image, "PNG")), **LIMITS).image).mode == "L"


def test_16_bit_grayscale_is_stretched_over_its_range_not_clipped():
    twelve_bit = np.array([[0, 4095], [2048, 1024]], dtype=np.uint16)  # a 12-bit X-ray in 16 bits
    for image_format in ("PNG", "TIFF"):
        data = _encode(Image.fromarray(twelve_bit), image_format)
        result = normalise_mode(validate_image_upload(io.BytesIO(data), **LIMITS).image)
        assert result.mode == "L"
        assert np.asarray(result).tolist() == [[0, 255], [128, 64]]


def test_cmyk_jpeg_becomes_rgb():
    data = _encode(_two_colour_image().convert("CMYK"), "JPEG")
    assert normalise_mode(validate_image_upload(io.BytesIO(data), **LIMITS).image).mode == "RGB"
