"""The photo kept of an upload says nothing about who took it or where, and the model reads the same pixels."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps, PngImagePlugin

from constants import STORED_PHOTO_MAX_SIDE
from tests.support.images import identifying_photo, sample_image, without_metadata_or_gps
from utils.errors import AppError
from utils.image_metadata import UnexpectedLayout, strip_png
from utils.images import validate_image_upload

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
FORMATS_WITH_METADATA = ("JPEG", "PNG", "WEBP", "TIFF")


def _encode(image: Image.Image, image_format: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_args)
    return buffer.getvalue()


def _red_over_blue(size=(64, 32)) -> Image.Image:
    """Left half red, right half blue: turned upright (EXIF 6), red is on top."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def _as_before(data: bytes, decode_size: int | None) -> np.ndarray:
    """What the model read before metadata was stripped: Pillow's decode (scaled for a JPEG), turned upright."""
    with Image.open(io.BytesIO(data)) as image:
        if decode_size and image.format == "JPEG":
            image.draft(None, (decode_size, decode_size))
        return np.asarray(ImageOps.exif_transpose(image))


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("image_format", FORMATS_WITH_METADATA)
def test_the_kept_photo_has_no_metadata_no_gps_and_stands_upright(image_format, orientation):
    upload = identifying_photo(_red_over_blue(), image_format, orientation)
    assert not without_metadata_or_gps(upload)
    result = validate_image_upload(upload, **LIMITS)
    assert without_metadata_or_gps(result.data)
    kept = Image.open(io.BytesIO(result.data))
    assert kept.format == image_format
    assert kept.size == (result.width, result.height) == ((32, 64) if orientation == 6 else (64, 32))
    red, _, blue = kept.convert("RGB").getpixel((kept.width // 4, kept.height // 4))
    assert red > 200 and blue < 60  # the top left is red either way


@pytest.mark.parametrize("decode_size", [None, 160])
@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("image_format", FORMATS_WITH_METADATA)
def test_the_model_reads_the_same_pixels_as_before_the_strip(image_format, orientation, decode_size):
    with Image.open(sample_image("skin_lesion")) as photo:
        upload = identifying_photo(photo.convert("RGB").resize((800, 600)), image_format, orientation)
    result = validate_image_upload(upload, **LIMITS, decode_size=decode_size)
    assert np.array_equal(np.asarray(result.image), _as_before(upload, decode_size))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_an_upright_jpeg_or_png_loses_its_metadata_and_keeps_its_pixels_bit_for_bit(image_format):
    with Image.open(sample_image("skin_lesion")) as photo:
        image = photo.convert("RGB")
    plain = _encode(image, image_format, **({"quality": 92} if image_format == "JPEG" else {}))
    result = validate_image_upload(identifying_photo(image, image_format), **LIMITS)
    # The same encoder run without metadata: only the metadata segments and chunks were dropped.
    assert result.data == plain


def test_an_animated_png_is_re_encoded_from_its_first_frame_without_its_text():
    frames = [Image.new("RGB", (40, 20), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:], pnginfo=_text("png-text-ada"))
    with pytest.raises(UnexpectedLayout):
        strip_png(buffer.getvalue())
    result = validate_image_upload(buffer.getvalue(), **LIMITS)
    assert without_metadata_or_gps(result.data)
    assert Image.open(io.BytesIO(result.data)).convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_bytes_after_a_png_s_end_and_private_chunks_are_dropped():
    png = _encode(Image.new("L", (8, 8), 90), "PNG")
    private = struct.pack(">I", 9) + b"prVt" + b"patient-1" + struct.pack(">I", zlib.crc32(b"prVtpatient-1"))
    iend = png.rindex(b"IEND") - 4
    upload = png[:iend] + private + png[iend:] + b"trailer-after-the-image"
    assert validate_image_upload(upload, **LIMITS).data == png


def _text(value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", value)
    return info


# -- size: what is decoded, and what is kept --------------------------------------------------


def test_a_photo_larger_than_the_cap_is_kept_at_the_cap_and_described_at_full_size():
    result = validate_image_upload(_encode(Image.new("RGB", (5000, 1000), "teal"), "PNG"), **LIMITS)
    assert (result.width, result.height) == (5000, 1000)
    assert Image.open(io.BytesIO(result.data)).size == (STORED_PHOTO_MAX_SIDE, 410)
    assert result.image.size == (2500, 500)  # shrunk by a whole factor as soon as it was decoded


def test_a_huge_jpeg_is_decoded_scaled_down_for_the_model_and_for_the_photo():
    jpeg = _encode(Image.new("RGB", (7000, 5000), "teal"), "JPEG")
    result = validate_image_upload(jpeg, **LIMITS, decode_size=192)
    assert result.image.size == (875, 625)  # libjpeg's 1/8
    assert Image.open(io.BytesIO(result.data)).size == (1750, 1250)  # 1/4: the largest scale within the cap


def test_an_image_decoded_whole_is_refused_past_its_own_limit_before_any_pixel_is_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image))
    png = _encode(Image.new("L", (300, 200)), "PNG")
    with pytest.raises(AppError) as caught:
        validate_image_upload(png, **LIMITS, max_full_decode_pixels=50_000)
    error = caught.value
    assert (error.status, error.code) == (422, "image_too_large")
    assert error.details == {"width": 300, "height": 200, "max_pixels": 50_000}
    assert decoded == []


def test_a_jpeg_of_the_same_size_is_within_its_limit():
    jpeg = _encode(Image.new("L", (300, 200)), "JPEG")
    assert validate_image_upload(jpeg, **LIMITS, max_full_decode_pixels=50_000).width == 300
