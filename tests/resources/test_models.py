"""GET /api/v1/models: the typed cards, dumped by attribute, answer exactly what the card files say."""

from __future__ import annotations

import json
from pathlib import Path

from cnn_model.card import ModelCard
from schemas.models import ModelArtifactSchema, ModelCardSchema


def test_each_card_is_answered_as_its_file_has_it(app, client):
    items = client.get("/api/v1/models").get_json()["items"]

    assert items
    published = set(ModelCardSchema().fields)
    for item in items:
        path = Path(app.config["MODEL_DIR"]) / item["modality"] / "card.json"
        on_disk = json.loads(path.read_text())
        expected = {key: value for key, value in on_disk.items() if key in published}
        expected["artifact"] = {k: v for k, v in on_disk["artifact"].items() if k in ModelArtifactSchema().fields}
        assert item == expected


def test_a_section_the_card_file_lacks_is_left_out_not_null(app):
    path = Path(app.config["MODEL_DIR"]) / "breast" / "card.json"
    data = json.loads(path.read_text())
    del data["decision"]
    card = ModelCard.from_json(data)

    dumped = ModelCardSchema().dump(card)

    assert "decision" not in dumped and dumped["artifact"]["sha256"] == card.artifact.sha256
    assert dumped["input"] == data["input"] and dumped["classes"][1]["name"] == card.classes[1].name
