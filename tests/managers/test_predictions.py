"""PredictionManager: the no-half-writes rule under injected faults, through the seams we own."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db import db
from managers.predictions import PredictionManager
from managers.users import UserManager
from models import AuditEvent, Prediction
from services.storage import LocalFolderStorage
from tests.resources.helpers import assert_error
from tests.support.predictions import FailingPutStorage, dataset_image, stored_files, temp_files_left
from utils.errors import DatabaseUnavailable, StorageUnavailable


def rows(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def owner(app_context, patient):
    return UserManager.get(patient.id)


def test_create_stores_photo_and_heatmap_and_writes_row_and_audit(owner, modality, storage_root):
    path = dataset_image(modality)
    prediction = PredictionManager.create(owner, modality, path.read_bytes(), note=" hello ")
    assert prediction.note == "hello" and prediction.image_content_type == "image/jpeg"
    assert rows(Prediction) == 1 and rows(AuditEvent) >= 1
    storage = LocalFolderStorage(storage_root)
    assert storage.get_object(prediction.image_key).data == path.read_bytes()
    assert storage.get_object(prediction.heatmap_key).data.startswith(b"\x89PNG")
    assert prediction.image_key.startswith("photos/") and prediction.heatmap_key.startswith("heatmaps/")


@pytest.mark.parametrize("fail_from_call", [1, 2], ids=["photo-put-fails", "heatmap-put-fails"])
def test_storage_failure_writes_no_row_and_removes_what_was_stored(owner, modality, swap_storage, tmp_path, fail_from_call):
    storage = swap_storage(FailingPutStorage(tmp_path / "photos", fail_from_call=fail_from_call))
    before = rows(AuditEvent)
    with pytest.raises(StorageUnavailable):
        PredictionManager.create(owner, modality, dataset_image(modality).read_bytes())
    assert storage.put_calls == fail_from_call
    assert rows(Prediction) == 0 and rows(AuditEvent) == before
    assert stored_files(storage.root) == []
    assert temp_files_left() == []


def test_commit_failure_deletes_the_stored_objects(owner, modality, storage_root, failing_prediction_commit):
    with pytest.raises(DatabaseUnavailable):
        PredictionManager.create(owner, modality, dataset_image(modality).read_bytes())
    assert failing_prediction_commit == [True]
    assert stored_files(storage_root) == []
    assert rows(Prediction) == 0
    assert temp_files_left() == []


def test_storage_outage_is_503_storage_unavailable_over_http(app, upload, patient, modality, swap_storage, tmp_path):
    swap_storage(FailingPutStorage(tmp_path / "photos", fail_from_call=2))
    assert_error(upload(patient, modality), 503, "storage_unavailable")
    with app.app_context():
        assert rows(Prediction) == 0
    assert stored_files(tmp_path / "photos") == []


def test_database_failure_is_503_database_unavailable_over_http(app, upload, patient, modality, storage_root, failing_prediction_commit):
    assert_error(upload(patient, modality), 503, "database_unavailable")
    assert stored_files(storage_root) == []
    with app.app_context():
        assert rows(Prediction) == 0
    assert temp_files_left() == []


def test_delete_with_storage_down_keeps_the_record_whole(app, client, predict, patient, modality, swap_storage, tmp_path):
    class DeleteFails(LocalFolderStorage):
        def delete_object(self, key):
            raise StorageUnavailable(details={"backend": "test", "reason": "injected delete failure"})

    made = predict(patient, modality)
    swap_storage(DeleteFails(app.config["STORAGE_LOCAL_ROOT"]))
    assert_error(client.delete(f"/api/v1/predictions/{made['id']}", headers=patient.headers), 503, "storage_unavailable")
    assert client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).status_code == 200
