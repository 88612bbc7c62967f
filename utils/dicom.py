"""DICOM uploads: the first frame as an 8-bit picture a model reads, and the file stripped of who it is about.

Pixels: the modality LUT (rescale slope and intercept, or a LUT), then the VOI LUT or the first
window (linear, linear exact or sigmoid, per PS3.3 C.11.2), else the frame's own range; MONOCHROME1
is inverted so that bone is always bright. Colour files become RGB.

Identity: the stored file is rebuilt from an allow-list (utils.dicom_deidentify: PS3.15 Annex E's
Basic Profile). A file that declares identifying text burned into its pixels is refused, since its
pixels cannot be cleaned here.

Malformed files: every step from parsing to writing the kept file is inside one refusal (422
invalid_image). Nothing read from a file is ever put in an error message, and no message of an
exception raised while reading one reaches a log: they may quote a name or a date of birth.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from utils.dicom_deidentify import deidentified_file
from utils.errors import AppError, ImageTooLarge, InvalidImage, UnsupportedMediaType, ValidationFailed

# pydicom is imported when a DICOM file arrives, not at start-up: every worker would otherwise pay
# about 10 MB and 0.16 s for a format most deployments never see.
if TYPE_CHECKING:
    from pydicom.dataset import Dataset

PREAMBLE_LENGTH = 128
MAGIC = b"DICM"
CONTENT_TYPE = "application/dicom"
UNREADABLE = "The DICOM file could not be read; it may be truncated or corrupt."


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
    _quiet_pydicom()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings quote the values they complain about
        try:
            return _read(data, max_pixels)
        except AppError:
            raise
        # A hostile or broken file can fail anywhere in pydicom or numpy; the cause is dropped (from None),
        # since its message may quote what the file holds.
        except Exception:
            raise InvalidImage(UNREADABLE, details={"format": "DICOM"}) from None


def _quiet_pydicom() -> None:
    from pydicom import config as pydicom_config

    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)


def _read(data: bytes, max_pixels: int) -> DicomImage:
    from pydicom import dcmread

    dataset = dcmread(io.BytesIO(data))
    if "PixelData" not in dataset:
        raise InvalidImage(
            "The DICOM file holds no image (it may be a report, a structured document or a waveform).",
            details={"format": "DICOM", "reason": "no_pixel_data"},
        )
    if any(value.strip().upper() == "YES" for value in _strings(dataset.get("BurnedInAnnotation"))):
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
    frame = _first_frame(dataset)
    image = _shown(dataset, frame)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    return DicomImage(image=image, deidentified=deidentified_file(dataset, frame), frames=frames)


def _strings(value) -> list[str]:
    """An attribute's values as strings: none when absent, each of a multi-valued one (NO\\YES is two)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [value.decode("ascii", "replace") if isinstance(value, bytes) else value]
    return [str(item) for item in value]


def _first_frame(dataset: Dataset) -> np.ndarray:
    """The first frame's stored values (colour as RGB), decoded from whatever codec the file uses."""
    from pydicom.pixels import pixel_array

    meta = getattr(dataset, "file_meta", None)
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    try:
        frame = pixel_array(dataset, index=0)
    except (NotImplementedError, RuntimeError):
        # A compressed syntax without a decoder here (JPEG lossless, JPEG-LS, JPEG 2000 without a plugin).
        name = transfer_syntax.name if transfer_syntax is not None else "unknown"
        raise UnsupportedMediaType(
            f"DICOM files compressed as {name} cannot be decoded here; send it uncompressed, RLE or JPEG baseline.",
            details={"format": "DICOM", "transfer_syntax": str(transfer_syntax or "")},
        ) from None
    except Exception:
        raise InvalidImage(
            "The DICOM file's pixels could not be decoded; it may be truncated or corrupt.",
            details={"format": "DICOM"},
        ) from None
    samples = int(dataset.get("SamplesPerPixel", 1))
    if (samples, frame.ndim) not in ((1, 2), (3, 3)) or frame.dtype.itemsize > 2 or frame.dtype.kind not in "ui":
        raise InvalidImage("The DICOM image has an unsupported pixel layout.", details={"format": "DICOM"})
    return frame


def _shown(dataset: Dataset, frame: np.ndarray) -> Image.Image:
    """The frame as a viewer shows it, 8 bits a sample."""
    from pydicom.pixels import apply_modality_lut

    if frame.ndim == 3:
        return Image.fromarray(_to_uint8(frame.astype(np.float64), (0, float(2 ** int(dataset.BitsStored) - 1))), "RGB")
    values = apply_modality_lut(frame, dataset).astype(np.float64)
    scaled = _voi(values, dataset)
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: the lowest value is white
    return Image.fromarray(np.round(scaled * 255.0).astype(np.uint8), "L")


def _present(dataset: Dataset, keyword: str) -> bool:
    """Whether the attribute is there with a value: an empty window or LUT sequence is as good as none."""
    value = dataset.get(keyword)
    return value is not None and value != "" and not (hasattr(value, "__len__") and len(value) == 0)


def _first(value) -> float:
    """The first of a multi-valued attribute (several windows may be offered), as a float."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _voi(values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Values of interest mapped to 0..1: the VOI LUT, else the first window, else the frame's own range."""
    from pydicom.pixels import apply_voi_lut

    if _present(dataset, "VOILUTSequence"):
        mapped = apply_voi_lut(values, dataset, index=0).astype(np.float64)
        descriptor = dataset.VOILUTSequence[0].LUTDescriptor
        top = float(2 ** int(descriptor[2]) - 1) if int(descriptor[2]) > 0 else float(mapped.max() or 1)
        return np.clip(mapped / top, 0.0, 1.0)
    if _present(dataset, "WindowCenter") and _present(dataset, "WindowWidth"):
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
