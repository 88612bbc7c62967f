"""The near-domain foreign set: no source picture is in both parts, and every source names its licence."""

from __future__ import annotations

import pytest

pytest.importorskip("skimage")

from cnn_model.training.near_domain import FIT, HELD_OUT, SOURCES, near_domain_images, source_of  # noqa: E402


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
