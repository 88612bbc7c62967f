"""The near-domain foreign set: no source picture is in both parts, and every source names its licence."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")

from cnn_model.training.near_domain import (  # noqa: E402
    FIT,
    FUNDUS_PICTURES,
    HELD_OUT,
    SOURCES,
    near_domain_images,
    source_of,
)


def test_fit_and_held_out_share_no_source_picture_and_each_names_its_licence():
    fit = {s.name.split("-")[0] for s in SOURCES if s.part == FIT}
    held_out = {s.name.split("-")[0] for s in SOURCES if s.part == HELD_OUT}

    assert not (fit - {"skimage:lfw"}) & (held_out - {"skimage:lfw"})  # LFW: different people in each part
    assert all(s.licence for s in SOURCES)
    assert {"animal", "face", "texture"} <= {s.kind for s in SOURCES if s.part == HELD_OUT}


def test_the_held_out_close_ups_are_the_same_every_time():
    first = [(kind, name, image.size) for kind, name, image in near_domain_images(HELD_OUT)]
    again = [(kind, name, image.size) for kind, name, image in near_domain_images(HELD_OUT)]

    assert first == again and len(first) == 640


def test_naming_a_source_gives_the_same_close_ups_of_it():
    cat = "skimage:chelsea"
    named = [(name, image.tobytes()) for _kind, name, image in near_domain_images(HELD_OUT, sources={cat})]
    from_all = [(name, image.tobytes()) for _k, name, image in near_domain_images(HELD_OUT) if source_of(name) == cat]

    assert len(named) == 30 and named == from_all


def test_the_generated_fundus_pictures_are_fitted_on_and_the_same_every_time():
    fundus = "generated:fundus"
    assert next(s for s in SOURCES if s.name == fundus).part == FIT
    first = [(name, image.tobytes()) for _kind, name, image in near_domain_images(FIT, sources={fundus})]
    again = [(name, image.tobytes()) for _kind, name, image in near_domain_images(FIT, sources={fundus})]

    assert len(first) == 8 * FUNDUS_PICTURES and first == again
    assert {source_of(name) for name, _ in first} == {fundus}
    whole = next(image for _kind, name, image in near_domain_images(FIT, sources={fundus}) if name.endswith("0-whole"))
    pixels = np.asarray(whole, dtype=float)
    # Dark corners, an orange-red middle: red above green above blue.
    assert pixels[:5, :5].mean() < 30
    middle = pixels[pixels.shape[0] // 3 : 2 * pixels.shape[0] // 3, pixels.shape[1] // 3 : 2 * pixels.shape[1] // 3]
    red, green, blue = middle.reshape(-1, 3).mean(axis=0)
    assert red > green > blue and red > 100
