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

from PIL import Image, ImageOps

from utils import dicom
from utils.errors import EmptyFile, ImageTooLarge, InvalidImage, PayloadTooLarge, UnsupportedMediaType

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


@dataclass(frozen=True)
class ValidatedImage:
    image: Image.Image
    format: str
    width: int
    height: int
    sha256: str
    data: bytes  # what is stored and served as the photo (for DICOM: its PNG preview)
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
    allowed_formats: Iterable[str] = ACCEPTED_FORMATS,
    decode_size: int | None = None,
) -> ValidatedImage:
    """Read, check and decode an uploaded image; raise a domain error saying what is wrong with it.

    decode_size: the smallest side in pixels the caller needs. A JPEG at least twice that size on both
    sides is then decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's scaled decoding, Pillow's draft mode),
    never below decode_size: a fraction of the work, for a caller that shrinks the image to that size
    anyway. width and height, data and sha256 always describe the upload itself.
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

    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as opened:
            # The header is parsed but no pixels are decoded yet: refuse bombs before allocating.
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"The image is {width}×{height} pixels; the limit is {max_pixels} pixels.",
                    details={"width": width, "height": height, "max_pixels": max_pixels},
                )
            if decode_size and image_format == "JPEG":
                opened.draft(None, (decode_size, decode_size))
            opened.load()
            if image_format == "JPEG" and _jpeg_ends_in_fill(opened, height):
                raise InvalidImage(
                    "The JPEG ends before its last rows: it is truncated or corrupt.", details={"format": image_format}
                )
            image = ImageOps.exif_transpose(opened)
            if image.size != opened.size:  # turned upright: a quarter turn swaps the sides
                width, height = height, width
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
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


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
