"""The local folder's writes: whole objects or none for readers, one flush to the disk per object."""

from __future__ import annotations

import os

from services import storage as storage_module
from services.storage import LocalFolderStorage


def test_an_object_is_flushed_once_after_its_renames_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    store = LocalFolderStorage(tmp_path)
    flushed: list[bytes] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # By the time of the flush the object is in place under its key: the rename rides on it.
        flushed.append(store.get_object("photos/a").data)
        real_fsync(fd)

    monkeypatch.setattr(storage_module.os, "fsync", fsync)
    store.put_object("photos/a", b"\xff\xd8 jpeg bytes", "image/jpeg")
    assert flushed == [b"\xff\xd8 jpeg bytes"]
    assert store.get_object("photos/a").content_type == "image/jpeg"
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]
