import numpy as np
import pytest

from cnn_model.training.heatmap_check import region_mask
from cnn_model.training.occlusion_check import OCCLUSIONS, THORAX_BOX, file_series, mcnemar_p, occlude, occluded_input

SIDE = 40


def random_image(channels=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(SIDE, SIDE, channels)).astype(np.float32)


def test_occlude_sets_masked_pixels_to_fill_and_leaves_the_rest():
    image = random_image()
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    mask[5:12, 20:33] = True
    occluded = occlude(image, mask, 77.0)
    assert np.all(occluded[mask] == 77.0)
    np.testing.assert_array_equal(occluded[~mask], image[~mask])
    assert not np.any(image[mask] == 77.0)  # the input is not modified


def test_occlude_works_on_a_single_channel_image():
    image = random_image(channels=1)[:, :, 0]
    mask = np.eye(SIDE, dtype=bool)
    occluded = occlude(image, mask, 0.0)
    assert np.all(np.diag(occluded) == 0.0)
    np.testing.assert_array_equal(occluded[~mask], image[~mask])


def test_outside_thorax_keeps_exactly_the_thorax_box_and_fills_with_the_mean_grey():
    image = random_image()
    occluded = occluded_input(image, OCCLUSIONS["outside_thorax"])
    centres = (np.arange(SIDE) + 0.5) / SIDE
    x0, y0, x1, y1 = THORAX_BOX
    kept = ((centres[None, :] >= x0) & (centres[None, :] < x1)) & ((centres[:, None] >= y0) & (centres[:, None] < y1))
    np.testing.assert_array_equal(kept, ~region_mask(OCCLUSIONS["outside_thorax"], SIDE))
    np.testing.assert_array_equal(occluded[kept], image[kept])
    assert np.allclose(occluded[~kept], image.mean())


def test_no_occlusion_returns_the_image_unchanged():
    image = random_image()
    np.testing.assert_array_equal(occluded_input(image, OCCLUSIONS["none"]), image)


@pytest.mark.parametrize(
    ("name", "series"),
    [
        ("IM-0115-0001.jpeg", "IM"),
        ("NORMAL2-IM-0374-0001-0002.jpeg", "NORMAL2-IM"),
        ("person123_virus_45.jpeg", "person_virus"),
        ("person1040_bacteria_2974.jpeg", "person_bacteria"),
        ("scan.png", "other"),
    ],
)
def test_file_series(name, series):
    assert file_series(name) == series


def test_mcnemar_p():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(3, 3) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 / 2**10)
