"""PredictionManager: the no-half-writes rule under injected faults, through the seams we own."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import delete, func, select

from cnn_model.modalities import get_spec
from db import db
from managers.pagination import Page
from managers.predictions import PredictionFilters, PredictionManager
from managers.users import UserManager
from models import AuditEvent, Prediction, PredictionCount, User
from services.storage import LocalFolderStorage, ObjectNotFound
from tests.resources.helpers import assert_error
from tests.support.images import sample_image
from tests.support.predictions import FailingPutStorage, open_temp_files, spilling_png, stored_files
from utils.cursor import Cursor
from utils.errors import DatabaseUnavailable, StorageUnavailable


def rows(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def owner(app_context, patient):
    return UserManager.get(patient.id)


def test_create_stores_the_uploaded_bytes_writes_row_and_audit_and_reserves_the_heatmap(owner, modality, storage_root):
    path = sample_image(modality)
    prediction = PredictionManager.create(owner, modality, path.read_bytes(), note=" hello ")
    assert prediction.note == "hello" and prediction.image_content_type == "image/jpeg"
    assert rows(Prediction) == 1 and rows(AuditEvent) >= 1
    storage = LocalFolderStorage(storage_root)
    assert storage.get_object(prediction.image_key).data == path.read_bytes()
    assert prediction.image_key.startswith("photos/") and prediction.heatmap_key.startswith("heatmaps/")
    # The heatmap is drawn when first asked for: until then the row keeps the activation map.
    with pytest.raises(ObjectNotFound):
        storage.get_object(prediction.heatmap_key)
    assert 0 < len(db.session.get(Prediction, prediction.id).activation_map) < 200


def test_a_large_jpeg_is_kept_byte_for_byte_with_its_full_size(owner, storage_root):
    with Image.open(sample_image("skin_lesion")) as small:
        large = small.resize((small.width * 4, small.height * 4), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=90)
    prediction = PredictionManager.create(owner, "skin_lesion", buffer.getvalue())
    assert (prediction.image_width, prediction.image_height) == large.size
    assert LocalFolderStorage(storage_root).get_object(prediction.image_key).data == buffer.getvalue()


def _served(download) -> bytes:
    return b"".join(download.stream.chunks)


def test_heatmap_is_rendered_on_first_view_then_served_from_storage(owner, modality, storage_root):
    path = sample_image(modality)
    made = PredictionManager.create(owner, modality, path.read_bytes())
    first = PredictionManager.open_image(owner, made.id, "heatmap").stream
    assert first.content_type == "image/png"
    first_png = b"".join(first.chunks)
    with Image.open(io.BytesIO(first_png)) as heatmap, Image.open(path) as photo:
        assert heatmap.format == "PNG" and heatmap.size == photo.size
    storage = LocalFolderStorage(storage_root)
    assert storage.get_object(made.heatmap_key).data == first_png
    # The map stays with the row (the DICOM Parametric Map is made from it); the PNG is not drawn again.
    assert db.session.get(Prediction, made.id).activation_map is not None
    # From now on the stored object is what is served: nothing is drawn again.
    storage.put_object(made.heatmap_key, b"\x89PNG stored", "image/png")
    assert _served(PredictionManager.open_image(owner, made.id, "heatmap")) == b"\x89PNG stored"


def test_heatmap_that_cannot_be_stored_is_503_and_drawn_on_the_next_view(owner, modality, storage_root, swap_storage):
    made = PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    swap_storage(FailingPutStorage(storage_root, fail_from_call=1))
    with pytest.raises(StorageUnavailable):
        PredictionManager.open_image(owner, made.id, "heatmap")
    db.session.rollback()
    assert db.session.get(Prediction, made.id).activation_map is not None
    swap_storage(LocalFolderStorage(storage_root))
    assert _served(PredictionManager.open_image(owner, made.id, "heatmap")).startswith(b"\x89PNG")


def test_a_heatmap_stored_at_upload_is_served_as_it_is(owner, modality, storage_root):
    made = PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    # A row from before heatmaps were drawn on first view: the PNG is stored, no activation map kept.
    db.session.get(Prediction, made.id).activation_map = None
    db.session.commit()
    LocalFolderStorage(storage_root).put_object(made.heatmap_key, b"\x89PNG from upload", "image/png")
    assert _served(PredictionManager.open_image(owner, made.id, "heatmap")) == b"\x89PNG from upload"


def test_storage_failure_writes_no_row_and_removes_what_was_stored(owner, modality, swap_storage, tmp_path):
    storage = swap_storage(FailingPutStorage(tmp_path / "photos", fail_from_call=1))
    before = rows(AuditEvent)
    with pytest.raises(StorageUnavailable):
        PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    assert storage.put_calls == 1
    assert rows(Prediction) == 0 and rows(AuditEvent) == before
    assert stored_files(storage.root) == []


def test_commit_failure_deletes_the_stored_objects(owner, modality, storage_root, failing_prediction_commit):
    with pytest.raises(DatabaseUnavailable):
        PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    assert failing_prediction_commit == [True]
    assert stored_files(storage_root) == []
    assert rows(Prediction) == 0


def test_storage_outage_is_503_storage_unavailable_over_http(app, upload, patient, modality, swap_storage, tmp_path):
    swap_storage(FailingPutStorage(tmp_path / "photos", fail_from_call=1))
    assert_error(upload(patient, modality), 503, "storage_unavailable")
    with app.app_context():
        assert rows(Prediction) == 0
    assert stored_files(tmp_path / "photos") == []


def test_database_failure_is_503_database_unavailable_over_http(
    app, upload, patient, modality, storage_root, failing_prediction_commit
):
    response = upload(patient, modality, data=spilling_png(modality), filename="big.png")
    assert_error(response, 503, "database_unavailable")
    assert stored_files(storage_root) == []
    with app.app_context():
        assert rows(Prediction) == 0
    assert open_temp_files() == []


def test_delete_with_storage_down_keeps_the_record_whole(
    app, client, predict, patient, modality, swap_storage, tmp_path
):
    class DeleteFails(LocalFolderStorage):
        def delete_object(self, key):
            raise StorageUnavailable(details={"backend": "test", "reason": "injected delete failure"})

    made = predict(patient, modality)
    swap_storage(DeleteFails(app.config["STORAGE_LOCAL_ROOT"]))
    assert_error(
        client.delete(f"/api/v1/predictions/{made['id']}", headers=patient.headers), 503, "storage_unavailable"
    )
    assert client.get(f"/api/v1/predictions/{made['id']}", headers=patient.headers).status_code == 200


# -- history paged by cursor ------------------------------------------------------------------


def add_rows(owner, count: int) -> list[Prediction]:
    """count predictions written straight to the table (no model run), three to a timestamp so ids break ties."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(count):
        positive = i % 2 == 0
        made.append(
            Prediction(
                id=uuid.uuid4(),
                owner_id=owner.id,
                modality="breast" if i % 3 else "skin_lesion",
                label="malignant" if positive else "benign",
                confidence=0.9,
                probabilities={},
                is_positive=positive,
                model_name="m",
                model_version="1",
                model_sha256="0" * 64,
                image_key=f"photos/{i}",
                image_content_type="image/jpeg",
                image_sha256="0" * 64,
                image_width=1,
                image_height=1,
                stored_bytes=1000 + i,
                created_at=base + timedelta(seconds=i // 3, microseconds=7 * (i // 3)),
            )
        )
    db.session.add_all(made)
    db.session.commit()
    return made


def test_history_totals_stay_exact_through_every_kind_of_insert_and_delete(owner):
    other = UserManager.create("other-owner@example.org", "correct-horse-42")
    mine, theirs = add_rows(owner, 7), add_rows(other, 3)

    def totals() -> tuple[int, int]:
        # The tally's stored bytes (what the storage quota reads) follow the same inserts and deletes.
        for account in (owner, other):
            tally = db.session.get(PredictionCount, account.id, populate_existing=True)
            assert (tally.stored_bytes if tally else 0) == bytes_of(account)
        everyone = PredictionManager.list_all(owner, PredictionFilters(), page=1, per_page=5).total
        return PredictionManager.list_for(owner, PredictionFilters(), page=1, per_page=5).total, everyone

    assert totals() == (7, 10)
    assert PredictionManager.list_for(owner, PredictionFilters(), page=1, per_page=5).pages == 2
    db.session.delete(mine[0])  # one row through the ORM
    db.session.commit()
    assert totals() == (6, 9)
    # A statement deleting several rows (as deleting all of one's data does), beside a filtered count.
    db.session.execute(delete(Prediction).where(Prediction.owner_id == owner.id, Prediction.modality == "breast"))
    db.session.commit()
    left = rows_of(owner)
    assert totals() == (left, left + 3)
    breast = PredictionManager.list_for(owner, PredictionFilters(modality="breast"), page=1, per_page=5)
    assert breast.total == 0
    db.session.execute(delete(User).where(User.id == other.id))  # the user's rows go by cascade
    db.session.commit()
    assert totals() == (left, left)
    assert db.session.get(PredictionCount, other.id) is None and len(theirs) == 3


def bytes_of(owner) -> int:
    summed = select(func.coalesce(func.sum(Prediction.stored_bytes), 0)).where(Prediction.owner_id == owner.id)
    return int(db.session.scalar(summed))


def rows_of(owner) -> int:
    return db.session.scalar(select(func.count()).select_from(Prediction).where(Prediction.owner_id == owner.id))


def newest_first(rows: list[Prediction]) -> list[uuid.UUID]:
    return [p.id for p in sorted(rows, key=lambda p: (p.created_at, p.id), reverse=True)]


def walk(owner, filters: PredictionFilters, per_page: int) -> tuple[list[uuid.UUID], list[Page]]:
    pages = [PredictionManager.list_for(owner, filters, 1, per_page)]
    while pages[-1].next_cursor:
        after = Cursor.decode(pages[-1].next_cursor)
        pages.append(PredictionManager.list_for(owner, filters, 1, per_page, after=after))
    return [p.id for page in pages for p in page.items], pages


@pytest.mark.parametrize("per_page", [1, 4, 7, 100])
def test_cursor_walks_the_whole_history_newest_first_without_duplicates_or_gaps(owner, make_account, per_page):
    other = UserManager.get(make_account().id)
    add_rows(other, 5)  # someone else's rows never show up
    rows_made = add_rows(owner, 23)
    seen, pages = walk(owner, PredictionFilters(), per_page)
    assert seen == newest_first(rows_made)
    assert all(page.total == 23 for page in pages)
    assert all(len(page.items) == per_page for page in pages[:-1]) and pages[-1].next_cursor is None
    assert pages[0].page == 1 and all(page.page is None for page in pages[1:])
    # The first page by cursor is the first page by number; page numbers keep working alongside.
    assert [p.id for p in PredictionManager.list_for(owner, PredictionFilters(), 2, per_page).items] == (
        seen[per_page : 2 * per_page]
    )


def test_cursor_walk_keeps_the_filters(owner):
    rows_made = add_rows(owner, 30)
    filters = PredictionFilters(modality="breast", is_positive=True)
    seen, pages = walk(owner, filters, 3)
    expected = newest_first([p for p in rows_made if p.modality == "breast" and p.is_positive])
    assert seen == expected and pages[0].total == len(expected) > 3


def test_cursor_round_trips_and_refuses_what_it_did_not_make():
    cursor = Cursor(at=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), id=uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for token in (
        "",
        "not base64!",
        "bm90IGEgY3Vyc29y",
        "x" * 300,
        base64.urlsafe_b64encode(b"2026-05-01T12:00:00|" + b"0" * 32).decode(),
    ):  # naive time
        with pytest.raises(ValueError):
            Cursor.decode(token)


def test_what_the_manager_hands_out_carries_the_positive_probability(owner, modality):
    created = PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    positives = get_spec(modality).positive_classes
    expected = pytest.approx(sum(created.probabilities[name] for name in positives))
    assert created.positive_probability == expected
    db.session.expunge(created)  # a fresh row from the database, not the object create() returned
    assert PredictionManager.get_for(owner, created.id).positive_probability == expected
    (listed,) = PredictionManager.list_for(owner, PredictionFilters(), page=1, per_page=5).items
    assert listed.positive_probability == expected


def test_the_positive_probability_is_the_rows_own_sum_of_its_positive_classes():
    """A property of the model, from the stored probabilities: any row has it, however it was loaded."""
    spec = get_spec("breast")
    row = Prediction(modality=spec.name, probabilities={"benign": 0.25, "malignant": 0.5, "normal": 0.25})
    assert spec.positive_classes == ("malignant",) and row.positive_probability == 0.5
    row.probabilities = {"benign": 0.9, "malignant": 0.1}
    assert row.positive_probability == 0.1


def test_a_predictions_facts_are_what_was_stored_with_its_positive_probability(owner, modality):
    """The one mapping of a row that the API's answer and the account export both start from."""
    created = PredictionManager.create(owner, modality, sample_image(modality).read_bytes())
    facts = created.facts()
    assert facts["positive_probability"] == created.positive_probability
    assert set(facts) >= {"id", "label", "probabilities", "is_positive", "model", "image", "note"}
    assert facts["model"] == {
        "name": created.model_name,
        "version": created.model_version,
        "sha256": created.model_sha256,
    }
