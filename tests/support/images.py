"""Pytest plugin: real images for tests, from the committed fixture set or, where a test needs them all, the datasets.

Most tests need *an* image of a modality: ``sample_image`` gives one from tests/fixtures/images, a few
validation images per modality committed with the tests (sources and licences in the README there),
so the suite runs from any clone. Tests that need whole datasets (evaluation reproducing a model card,
preprocessing parity with the training pipeline, training) ask for the ``datasets_root`` fixture:
without ../shared/datasets beside the checkout they are skipped, or failed where
MEDSIGHT_REQUIRE_DATASETS=1 (CI sets it, so they can never be skipped there unnoticed).
Loaded from tests/conftest.py; every test asking for ``datasets_root`` gets the ``datasets`` marker.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from cnn_model.modalities import get_spec
from config import PROJECT_ROOT

FIXTURE_IMAGES_DIR = PROJECT_ROOT / "tests" / "fixtures" / "images"
DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"
REQUIRE_DATASETS_VARIABLE = "MEDSIGHT_REQUIRE_DATASETS"


def sample_images(modality: str, class_name: str | None = None) -> list[Path]:
    """The committed fixture images of the modality (of the class, if given), in a stable order."""
    folder = FIXTURE_IMAGES_DIR / modality
    images = sorted(p for p in folder.glob(f"{class_name or '*'}/*") if p.is_file())
    assert images, f"no fixture images for {modality} {class_name or ''} in {folder}"
    return images


def sample_image(modality: str, class_name: str | None = None) -> Path:
    """One real validation image of the modality: of the class if given, else of the spec's first class."""
    return sample_images(modality, class_name or get_spec(modality).class_names[0])[0]


def datasets_required() -> bool:
    return os.environ.get(REQUIRE_DATASETS_VARIABLE, "").strip() not in ("", "0")


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    """The labelled datasets (../shared/datasets): skip the test without them, or fail it where they are required."""
    if DATASETS_DIR.is_dir():
        return DATASETS_DIR
    reason = f"needs the labelled datasets in ../shared/datasets, which is not beside this checkout ({DATASETS_DIR})"
    if datasets_required():
        pytest.fail(f"{reason}; {REQUIRE_DATASETS_VARIABLE} is set, so this is a failure", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRE_DATASETS_VARIABLE}=1 to make this a failure")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "datasets_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.datasets)


# -- photos that say who and where --------------------------------------------------------------

# What identifying metadata an upload carries; none of it may reach storage, the API or an export.
IDENTIFYING_MARKERS = (
    b"Ada Lovelace",  # EXIF Artist
    b"seen at the Marylebone clinic",  # EXIF UserComment
    b"patient-record-4711",  # JPEG COM segment
    b"xmp-creator-ada",  # XMP packet
    b"icc-profile-of-adas-phone",  # ICC profile description
    b"png-text-ada",  # PNG tEXt / iTXt, TIFF ImageDescription
    b"trailer-after-the-image",  # bytes after a JPEG's end (a phone's trailer)
)
GPS_IFD = 0x8825
XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="xmp-creator-ada"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def identifying_exif(orientation: int = 1) -> Image.Exif:
    """EXIF naming a photographer, with a comment and a GPS position (51°30'N 0°7'W, London)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = "Ada Lovelace"
    exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"ASCII\x00\x00\x00seen at the Marylebone clinic"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 0.0)
    return exif


def _icc_profile() -> bytes:
    """An sRGB profile that names a person's phone (appended text: nothing here parses the profile)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() + b"icc-profile-of-adas-phone"


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def identifying_photo(image: Image.Image, image_format: str, orientation: int = 1) -> bytes:
    """image encoded in image_format with every kind of identifying metadata the format can carry."""
    buffer = io.BytesIO()
    exif = identifying_exif(orientation)
    if image_format == "JPEG":
        image.save(buffer, format="JPEG", quality=92, exif=exif, icc_profile=_icc_profile())
        jpeg = buffer.getvalue()
        by_hand = _jpeg_segment(0xFE, b"patient-record-4711") + _jpeg_segment(
            0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP_PACKET
        )
        return jpeg[:2] + by_hand + jpeg[2:] + b"trailer-after-the-image"
    if image_format == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Author", "png-text-ada")
        text.add_itxt("Description", "png-text-ada", lang="en")
        text.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
        image.save(buffer, format="PNG", pnginfo=text, exif=exif, icc_profile=_icc_profile())
    elif image_format == "WEBP":
        image.save(buffer, format="WEBP", quality=95, exif=exif, xmp=XMP_PACKET, icc_profile=_icc_profile())
    elif image_format == "TIFF":
        exif[ExifTags.Base.ImageDescription] = "png-text-ada"
        exif[700] = XMP_PACKET  # the XMP tag
        image.save(buffer, format="TIFF", exif=exif, icc_profile=_icc_profile())
    else:
        image.save(buffer, format=image_format)
    return buffer.getvalue()


def without_metadata_or_gps(data: bytes) -> bool:
    """Whether data carries none of IDENTIFYING_MARKERS, no GPS position and no ICC profile."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        has_gps = GPS_IFD in exif or bool(exif.get_ifd(GPS_IFD))
        return not has_gps and "icc_profile" not in image.info and not any(m in data for m in IDENTIFYING_MARKERS)
