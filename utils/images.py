"""Upload validation: turn untrusted bytes into one decoded, upright image, or a clear error.

The image keeps the mode it was stored in: which mode a network wants (RGB or L, transparency
flattened) is the model's preprocessing (cnn_model.preprocessing.normalise_mode).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags, Image, ImageFile

from constants import STORED_PHOTO_MAX_SIDE
from utils import dicom
from utils.errors import EmptyFile, ImageTooLarge, InvalidImage, PayloadTooLarge, UnsupportedMediaType
from utils.image_metadata import UnexpectedLayout, strip_jpeg, strip_png

# Pillow format name → the content type we store and serve it with.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}
SUPPORTED_FORMATS = tuple(CONTENT_TYPES)
# DICOM files are read by utils.dicom: their first frame is the image, kept as a PNG preview.
DICOM_FORMAT = "DICOM"
ACCEPTED_FORMATS = (*SUPPORTED_FORMATS, DICOM_FORMAT)
PREVIEW_FORMAT = "PNG"
_READ_CHUNK = 64 * 1024
# EXIF orientation → the turn that makes the image upright; 5 to 8 swap width and height.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_QUARTER_TURNS = (5, 6, 7, 8)
_REDUCIBLE_MODES = ("L", "LA", "I", "F", "RGB", "RGBA", "CMYK")
_LOSSLESS_STRIP = {"JPEG": strip_jpeg, "PNG": strip_png}
# A re-encoded photo: lossless where the format allows, JPEG at a quality that hides its second generation.
_ENCODER_OPTIONS = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "PNG": {},
    "BMP": {},
    "TIFF": {"compression": "tiff_adobe_deflate"},
    "WEBP": {"lossless": True, "exact": True},
}


@dataclass(frozen=True)
class ValidatedImage:
    image: Image.Image
    format: str
    width: int
    height: int
    sha256: str
    # What is stored and served as the photo: upright, at most STORED_PHOTO_MAX_SIDE a side, without the file's
    # metadata (EXIF, GPS, XMP, comments, text chunks, ICC profile); for DICOM its PNG preview. sha256 is its hash:
    # a hash of the upload itself would point at the file on the patient's phone.
    data: bytes
    original: bytes | None = None  # a DICOM upload's file, de-identified, kept beside its preview

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[PREVIEW_FORMAT if self.format == DICOM_FORMAT else self.format]

    @property
    def original_content_type(self) -> str | None:
        return dicom.CONTENT_TYPE if self.original is not None else None


def sniff_format(head: bytes) -> str | None:
    """The image format the leading bytes announce, or None; never trusts names or client headers."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"BM") and len(head) >= 26:
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if dicom.is_dicom(head):
        return DICOM_FORMAT
    return None


def _read_capped(stream: BinaryIO | bytes, max_bytes: int) -> bytes:
    if isinstance(stream, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(bytes(stream))
    chunks, total = [], 0
    # One byte past the cap is enough to know the upload is too big; the rest is never read.
    while total <= max_bytes:
        chunk = stream.read(min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > max_bytes:
        raise PayloadTooLarge(f"The file is larger than the {max_bytes} byte limit.", details={"max_bytes": max_bytes})
    return b"".join(chunks)


def _jpeg_ends_in_fill(image: Image.Image, declared_height: int) -> bool:
    """Whether a decoded JPEG's last row of 8x8 blocks is libjpeg's fill for data that never came.

    A JPEG whose data stops at an end-of-image marker before its last rows (a header saying 6000x6000
    followed by 4 KB) decodes without an error: libjpeg only warns, and Pillow does not pass the warning
    on. What is missing comes out as flat mid-grey, every sample exactly 128; no photograph of ours ends in
    a whole row of blocks of exactly that, so it is read as what it is: data that is not there.
    """
    rows = max(1, round(8 * image.height / max(1, declared_height)))  # one block row, at the draft's scale
    extrema = image.crop((0, image.height - rows, image.width, image.height)).getextrema()
    per_band = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return all(band == (128, 128) for band in per_band)


def validate_image_upload(
    stream: BinaryIO | bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    max_full_decode_pixels: int | None = None,
    allowed_formats: Iterable[str] = ACCEPTED_FORMATS,
    decode_size: int | None = None,
    keep: bool = True,
) -> ValidatedImage:
    """Read, check and decode an uploaded image; raise a domain error saying what is wrong with it.

    max_pixels bounds every image; max_full_decode_pixels (default max_pixels) those that are decoded
    whole, every format but JPEG: their decoder holds all their pixels at once.
    decode_size: the smallest side in pixels the caller needs. A JPEG at least twice that size on both
    sides is then decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's scaled decoding, Pillow's draft mode),
    never below decode_size: a fraction of the work, for a caller that shrinks the image to that size
    anyway. Any other image wider or taller than twice STORED_PHOTO_MAX_SIDE is shrunk by a whole factor
    as soon as it is decoded, so the full-size pixels are held only for that moment.
    keep: make data the photo to store (see ValidatedImage.data); False leaves data the bytes as given, for
    bytes that are such a photo already. width and height always describe the upload itself, upright.
    """
    accepted = sorted({name.upper() for name in allowed_formats} & set(ACCEPTED_FORMATS))
    data = _read_capped(stream, max_bytes)
    if not data:
        raise EmptyFile("The uploaded file is empty.")

    image_format = sniff_format(data[: dicom.PREAMBLE_LENGTH + len(dicom.MAGIC)])
    if image_format not in accepted:
        raise UnsupportedMediaType(
            f"The file is not an accepted image; accepted formats: {', '.join(accepted)}.",
            details={"accepted_formats": accepted, "detected_format": image_format},
        )
    if image_format == DICOM_FORMAT:
        return _validated_dicom(data, max_pixels)

    limit = max_pixels if image_format == "JPEG" else min(max_pixels, max_full_decode_pixels or max_pixels)
    try:
        image, (width, height), orientation = _decoded_upright(data, image_format, limit, decode_size)
        photo = _photo_to_keep(data, image_format, image, orientation, (width, height)) if keep else data
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge("The image has too many pixels.", details={"max_pixels": max_pixels}) from exc
    except (ImageTooLarge, InvalidImage):
        raise
    # Pillow's decoders raise many exception types on hostile or broken input; all mean the same here.
    except Exception as exc:
        raise InvalidImage(
            "The file could not be decoded as an image; it may be truncated or corrupt.",
            details={"format": image_format},
        ) from exc

    return ValidatedImage(
        image=image,
        format=image_format,
        width=width,
        height=height,
        sha256=hashlib.sha256(photo).hexdigest(),
        data=photo,
    )


def _decoded_upright(
    data: bytes, image_format: str, max_pixels: int, decode_size: int | None
) -> tuple[Image.Image, tuple[int, int], int]:
    """The pixels turned upright, decoded no larger than needed; the upload's upright size; its EXIF orientation.

    The full-size pixels of a shrunk image go with this function's frame, before anything else is made of it.
    """
    opened = _opened_within(data, image_format, max_pixels)
    width, height = opened.size
    if image_format == "JPEG":
        opened.draft(None, (decode_size, decode_size) if decode_size else _photo_box(opened.size))
    opened.load()
    if image_format == "JPEG" and _jpeg_ends_in_fill(opened, height):
        raise InvalidImage(
            "The JPEG ends before its last rows: it is truncated or corrupt.", details={"format": image_format}
        )
    if image_format != "JPEG":
        width, height = opened.size  # a TIFF's decoder may have turned it upright already
    # Read once loaded (a TIFF's orientation is gone once its decoder applied it), and from the file: a shrunk
    # copy has none.
    orientation = opened.getexif().get(ExifTags.Base.Orientation, 1)
    image = _upright(opened if image_format == "JPEG" else _shrunk(opened), orientation)
    return image, ((height, width) if orientation in _QUARTER_TURNS else (width, height)), orientation


def _opened_within(data: bytes, image_format: str, max_pixels: int) -> ImageFile.ImageFile:
    """The image with its header parsed and no pixels decoded yet: a bomb is refused before anything is allocated."""
    opened = Image.open(io.BytesIO(data), formats=[image_format])
    width, height = opened.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width}×{height} pixels; the limit is {max_pixels} pixels.",
            details={"width": width, "height": height, "max_pixels": max_pixels},
        )
    return opened


def _shrunk(image: Image.Image) -> Image.Image:
    """The image shrunk by the largest whole factor that keeps its long side at least STORED_PHOTO_MAX_SIDE."""
    factor = max(image.size) // STORED_PHOTO_MAX_SIDE
    if factor < 2:
        return image
    if image.mode in _REDUCIBLE_MODES:  # block averages in one pass, no intermediate image
        return image.reduce(factor)
    # Palette, bilevel and 16-bit images: Pillow averages these in two passes (BOX), or picks pixels (1, P).
    return image.resize((-(-image.width // factor), -(-image.height // factor)), Image.Resampling.BOX)


def _photo_box(size: tuple[int, int]) -> tuple[int, int]:
    """The size of a photo of this shape whose long side is STORED_PHOTO_MAX_SIDE (the box a draft must cover)."""
    scale = min(1.0, STORED_PHOTO_MAX_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """The image turned as its EXIF orientation says, as every viewer shows it (ImageOps.exif_transpose's table)."""
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _photo_to_keep(
    data: bytes, image_format: str, image: Image.Image, orientation: int, size: tuple[int, int]
) -> bytes:
    """The photo to store and serve: upright, at most STORED_PHOTO_MAX_SIDE a side, without metadata.

    An upright JPEG or PNG small enough is rewritten without its metadata segments, its pixels untouched;
    anything else is re-encoded from its decoded pixels, losslessly but for JPEG.
    """
    if orientation not in _TRANSPOSE and max(size) <= STORED_PHOTO_MAX_SIDE and image_format in _LOSSLESS_STRIP:
        try:
            return _LOSSLESS_STRIP[image_format](data)
        except UnexpectedLayout:
            pass
    if max(image.size) < max(_photo_box(size)):  # a JPEG decoded at the model's scale: decode again for the photo
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as opened:
            # A larger one at the largest of libjpeg's scales (1/2, 1/4, 1/8) that is no larger than the photo (at
            # least half of it): the decode then holds no more pixels than the photo will.
            box = _photo_box(opened.size)
            opened.draft(None, box if box == opened.size else tuple(max(1, side // 2) for side in box))
            return _encoded(_upright(opened, orientation), image_format)
    return _encoded(image, image_format)


def _encoded(image: Image.Image, image_format: str) -> bytes:
    """image at most STORED_PHOTO_MAX_SIDE a side, encoded with nothing but its pixels (and transparency)."""
    target = _photo_box(image.size)
    photo = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0) if target != image.size else image.copy()
    # Pillow writes some of what it read (comments, ICC profiles) back into the file unless told otherwise.
    photo.info = {key: value for key, value in photo.info.items() if key == "transparency"}
    buffer = io.BytesIO()
    photo.save(buffer, format=image_format, **_ENCODER_OPTIONS[image_format])
    return buffer.getvalue()


def _validated_dicom(data: bytes, max_pixels: int) -> ValidatedImage:
    """A DICOM upload: its first frame, a PNG preview of it, and the file without its identifying tags."""
    decoded = dicom.read_dicom(data, max_pixels=max_pixels)
    preview = io.BytesIO()
    decoded.image.save(preview, format=PREVIEW_FORMAT)
    return ValidatedImage(
        image=decoded.image,
        format=DICOM_FORMAT,
        width=decoded.image.width,
        height=decoded.image.height,
        # Of the de-identified file: a hash of the original would itself point at the patient's file.
        sha256=hashlib.sha256(decoded.deidentified).hexdigest(),
        data=preview.getvalue(),
        original=decoded.deidentified,
    )


def thumbnail_jpeg(image: Image.Image, side: int, quality: int) -> bytes:
    """A small JPEG of image for lists: its centre, square, side pixels a side (smaller images are not enlarged)."""
    width, height = image.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    square = image.crop((left, top, left + crop, top + crop))
    if crop > side:
        square = square.resize((side, side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    square.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()
