"""The clinic's PACS over DICOMweb (dicomweb-client): find a study's instances (QIDO-RS), fetch one (WADO-RS),
store an object (STOW-RS).

Where it is comes from DICOMWEB_URL, with DICOMWEB_USERNAME and DICOMWEB_PASSWORD (HTTP basic) when the
PACS asks for them; every call builds its client from the app's config. A PACS that does not answer,
or answers with an HTTP error, is PacsUnavailable; nothing it sent is put in a message or a log line,
since a PACS's error pages may quote what it holds.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from flask import current_app

from utils.errors import PacsNotConfigured, PacsUnavailable

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

# The modalities a chest radiograph is stored as: computed and digital radiography.
STUDY_UID, SERIES_UID, INSTANCE_UID = "0020000D", "0020000E", "00080018"
MODALITY, BODY_PART = "00080060", "00180015"


@dataclass(frozen=True)
class InstanceRef:
    """Where one instance is in the PACS: its study, series and SOP instance UIDs."""

    study_uid: str
    series_uid: str
    instance_uid: str


def _value(attributes: dict, tag: str) -> str | None:
    values = (attributes.get(tag) or {}).get("Value") or []
    return str(values[0]) if values else None


def is_configured() -> bool:
    return bool(current_app.config.get("DICOMWEB_URL"))


def _client() -> DICOMwebClient:
    from dicomweb_client.api import DICOMwebClient

    config = current_app.config
    if not config.get("DICOMWEB_URL"):
        raise PacsNotConfigured()
    session = requests.Session()
    if config.get("DICOMWEB_USERNAME"):
        session.auth = (config["DICOMWEB_USERNAME"], config.get("DICOMWEB_PASSWORD") or "")
    return DICOMwebClient(url=config["DICOMWEB_URL"], session=session, timeout=config["DICOMWEB_TIMEOUT_S"])


def _unavailable(action: str, error: Exception) -> PacsUnavailable:
    status = getattr(getattr(error, "response", None), "status_code", None)
    log.warning("PACS %s failed: %s%s", action, type(error).__name__, f" (HTTP {status})" if status else "")
    return PacsUnavailable(details={"action": action, **({"pacs_status": status} if status else {})})


def instances_of(study_uid: str, modalities: frozenset[str], body_part: str | None, limit: int) -> list[InstanceRef]:
    """The study's instances of these DICOM modalities (and of body_part where the PACS says which), at most limit."""
    try:
        found = _client().search_for_instances(
            study_instance_uid=study_uid, fields=["Modality", "BodyPartExamined"], get_remaining=True
        )
    except requests.HTTPError as error:
        if getattr(error.response, "status_code", None) == 404:
            return []
        raise _unavailable("search", error) from None
    except requests.RequestException as error:
        raise _unavailable("search", error) from None
    instances = []
    for attributes in found:
        if _value(attributes, MODALITY) not in modalities:
            continue
        if body_part and (_value(attributes, BODY_PART) or body_part).upper() != body_part:
            continue
        series, instance = _value(attributes, SERIES_UID), _value(attributes, INSTANCE_UID)
        if series and instance:
            instances.append(InstanceRef(_value(attributes, STUDY_UID) or study_uid, series, instance))
    return instances[:limit]


def retrieve(ref: InstanceRef) -> bytes:
    """One instance as a DICOM file (PS3.10)."""
    try:
        dataset = _client().retrieve_instance(ref.study_uid, ref.series_uid, ref.instance_uid)
    except requests.RequestException as error:
        raise _unavailable("retrieve", error) from None
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def store(datasets: list[Dataset], study_uid: str) -> None:
    """Store the objects into the study (STOW-RS); PacsUnavailable unless the PACS took every one."""
    try:
        answer = _client().store_instances(datasets, study_instance_uid=study_uid)
    except requests.RequestException as error:
        raise _unavailable("store", error) from None
    if answer is not None and len(answer.get("FailedSOPSequence", [])):
        log.warning("PACS refused %d of %d objects", len(answer.FailedSOPSequence), len(datasets))
        raise PacsUnavailable(details={"action": "store", "refused": len(answer.FailedSOPSequence)})
