"""De-identification by PS3.15 Annex E: a DICOM carrying a distinct marker in every attribute of Table E.1-1 (and in
its preamble, file meta, a private tag and an icon image) is classified like the clean file, and none of its
markers is found again, in the kept file, S3, the export, any API answer, any page or the log. Malformed DICOM
files are refused with 422 and quoted nowhere."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest
import requests
from pydicom import dcmread

from tests.conftest import DEFAULT_PASSWORD
from tests.resources.helpers import assert_error, bearer
from tests.support.dicom import PREAMBLE_MARKER, marked_xray_dicom, xray_dicom
from tests.support.images import sample_images
from tests.web.conftest import sign_in
from utils.dicom_deidentify import EMPTIED_KEYWORDS, REPLACED_UID_KEYWORDS
from utils.images import validate_image_upload

XRAY = sample_images("chest_xray", "pneumonia")[0]
LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
# The only sequences a kept file holds: the method used, and the lookup tables that say how to show the pixels.
KEPT_SEQUENCES = {"DeidentificationMethodCodeSequence", "ModalityLUTSequence", "VOILUTSequence"}


@pytest.fixture(scope="module")
def marked():
    data, markers, table_tags = marked_xray_dicom(XRAY)
    assert len(table_tags) > 500, "Table E.1-1 lists over 500 attributes a file can hold"
    assert all(marker in data for marker in markers.values()), "the test file really carries every marker"
    assert data[:128] == PREAMBLE_MARKER
    return data, markers, table_tags


def markers_in(blob: bytes, markers: dict[int, bytes]) -> list[str]:
    return [f"{tag:08X}" for tag, marker in markers.items() if marker in blob]


def test_the_kept_file_holds_no_marker_and_only_emptied_or_new_table_attributes(marked):
    data, markers, table_tags = marked
    kept_bytes = validate_image_upload(io.BytesIO(data), **LIMITS).original
    assert markers_in(kept_bytes, markers) == []
    assert kept_bytes[:128] == b"\x00" * 128, "the preamble is zeroed"
    kept = dcmread(io.BytesIO(kept_bytes))
    sent = dcmread(io.BytesIO(data))
    assert "PrivateInformation" not in kept.file_meta and "PrivateInformationCreatorUID" not in kept.file_meta
    for element in kept.iterall():
        assert not element.tag.is_private
        if element.VR == "SQ":
            assert element.keyword in KEPT_SEQUENCES, element.keyword
        if int(element.tag) in table_tags:
            if element.keyword in REPLACED_UID_KEYWORDS:
                assert element.value != sent[element.tag].value, element.keyword
            else:
                assert element.keyword in EMPTIED_KEYWORDS and element.value in ("", None), element
    assert kept.PatientIdentityRemoved == "YES" and kept.LongitudinalTemporalInformationModified == "REMOVED"
    assert [item.CodeValue for item in kept.DeidentificationMethodCodeSequence] == ["113100"]
    assert (kept.pixel_array == sent.pixel_array).all()


@pytest.fixture
def s3_app(build_app, s3_bucket):
    return build_app(**s3_bucket)


def test_no_marker_is_stored_answered_exported_shown_or_logged(s3_app, s3_bucket, marked, capsys):
    data, markers, _table = marked
    client = s3_app.test_client()
    email = "marker-test@example.org"
    assert client.post("/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD}).status_code == 201
    token = client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}).get_json()
    headers = bearer(token["access_token"])
    capsys.readouterr()

    def upload(content: bytes):
        body = {"modality": "chest_xray", "file": (io.BytesIO(content), "Doe_Jane.dcm")}
        return client.post("/api/v1/predictions", data=body, headers=headers, content_type="multipart/form-data")

    created, clean = upload(data), upload(xray_dicom(XRAY))
    assert created.status_code == 201 and clean.status_code == 201, (created.get_json(), clean.get_json())
    assert created.get_json()["label"] == clean.get_json()["label"]
    assert created.get_json()["probabilities"] == pytest.approx(clean.get_json()["probabilities"], abs=1e-6)
    prediction_id = created.get_json()["id"]

    answers = {"created": created.get_data()}
    for name, url in {
        "record": f"/api/v1/predictions/{prediction_id}",
        "history": "/api/v1/predictions",
        "image": f"/api/v1/predictions/{prediction_id}/image",
        "heatmap": f"/api/v1/predictions/{prediction_id}/heatmap",
    }.items():
        answers[name] = _fetched(client, url, headers)
    export = client.get("/api/v1/me/export", headers=headers)
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.get_data())) as archive:
        names = archive.namelist()
        assert any(name.startswith("originals/") and name.endswith(".dcm") for name in names), names
        answers.update({f"export:{name}": archive.read(name) for name in names})
    pages = s3_app.test_client()
    sign_in(pages, email, DEFAULT_PASSWORD)
    for url in (f"/predictions/{prediction_id}", "/history"):
        response = pages.get(url)
        assert response.status_code == 200, url
        answers[f"page:{url}"] = response.get_data()
    s3 = boto3.client("s3", endpoint_url=s3_bucket["S3_ENDPOINT_URL"], region_name=s3_bucket["S3_REGION"])
    objects = s3.list_objects_v2(Bucket=s3_bucket["S3_BUCKET"]).get("Contents", [])
    assert any(item["Key"].startswith("originals/") for item in objects)
    for item in objects:
        answers[f"s3:{item['Key']}"] = s3.get_object(Bucket=s3_bucket["S3_BUCKET"], Key=item["Key"])["Body"].read()
    answers["log"] = capsys.readouterr().err.encode()

    leaks = {name: found for name, blob in answers.items() if (found := markers_in(blob, markers))}
    assert leaks == {}


def _fetched(client, url: str, headers: dict) -> bytes:
    """What a client gets from url, following a redirect to storage if the app answers with one."""
    response = client.get(url, headers=headers)
    if response.status_code in (302, 303, 307):
        stored = requests.get(response.headers["Location"], timeout=10)
        assert stored.status_code == 200, url
        return stored.content
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data()


def _modified(*, raw: dict[str, bytes] | None = None, **attributes) -> bytes:
    """The clean X-ray DICOM with attributes set, and raw values written as they are (a DS of text, say)."""
    from pydicom import config as pydicom_config
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    ds = dcmread(io.BytesIO(xray_dicom(XRAY)))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    for keyword, value in (raw or {}).items():
        tag = Tag(tag_for_keyword(keyword))
        ds._dict[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


LEAKY_WINDOW = b"Doe^Jane-LOGLEAK\\MRN-5551234"


@pytest.mark.parametrize("url", ["/api/v1/predictions", "/predict"])
def test_a_window_of_text_is_422_and_quoted_nowhere(app, client, patient, url, capsys, monkeypatch):
    monkeypatch.setitem(app.config, "ANONYMOUS_PREDICT", True)
    capsys.readouterr()
    body = {"modality": "chest_xray", "file": (io.BytesIO(_modified(raw={"WindowCenter": LEAKY_WINDOW})), "x.dcm")}
    headers = patient.headers if url.startswith("/api") else {}
    response = client.post(url, data=body, headers=headers, content_type="multipart/form-data")
    error = assert_error(response, 422, "invalid_image")
    log = capsys.readouterr().err
    for trace in ("LOGLEAK", "Doe^Jane", "MRN-5551234"):
        assert trace not in log and trace not in str(error)


@pytest.mark.parametrize(
    "attributes",
    [{"VOILUTSequence": []}, {"WindowCenter": "", "WindowWidth": ""}, {"WindowCenter": None}],
    ids=["empty-voi-lut-sequence", "empty-window", "window-centre-without-value"],
)
def test_an_empty_window_or_lut_is_read_as_none_given(app, client, attributes, monkeypatch):
    monkeypatch.setitem(app.config, "ANONYMOUS_PREDICT", True)
    body = {"modality": "chest_xray", "file": (io.BytesIO(_modified(**attributes)), "x.dcm")}
    response = client.post("/predict", data=body, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("value", ["NO\\YES", "yes", " YES"])
def test_burned_in_annotation_is_refused_when_any_value_says_yes(upload, patient, value):
    response = upload(patient, "chest_xray", data=_modified(BurnedInAnnotation=value), filename="x.dcm")
    assert_error(response, 422, "dicom_burned_in_annotation")
