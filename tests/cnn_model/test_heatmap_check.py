import numpy as np
import pytest

from cnn_model.modalities import SPECS
from cnn_model.specs import CENTRE_AND_BORDER, Region
from cnn_model.training.heatmap_check import (
    area_shares,
    on_edge,
    peak_cell,
    peak_region,
    region_mask,
    region_shares,
    spread,
    upsample,
)

SIDE = 160
CHEST = SPECS["chest_xray"].heatmap_regions
CHEST_REGIONS = CHEST.regions
GENERIC_REGIONS = CENTRE_AND_BORDER.regions


def box_map(box, side=SIDE):
    """A map that is 1 inside box (fractions of the square) and 0 elsewhere."""
    return region_mask(Region(boxes=(box,)), side).astype(np.float64)


def test_a_map_inside_one_lung_box_is_all_lung():
    shares = region_shares(box_map((0.2, 0.3, 0.4, 0.7)), CHEST_REGIONS)
    assert shares["lung_fields"] == pytest.approx(1.0)
    assert shares["mediastinum"] == shares["neck_top"] == shares["border"] == 0.0


def test_a_map_on_the_midline_is_mediastinum_and_one_above_the_chest_is_neck():
    assert region_shares(box_map((0.45, 0.3, 0.55, 0.7)), CHEST_REGIONS)["mediastinum"] == pytest.approx(1.0)
    neck = region_shares(box_map((0.3, 0.0, 0.7, 0.1)), CHEST_REGIONS)
    assert neck["neck_top"] == pytest.approx(1.0) and neck["lung_fields"] == 0.0


def test_chest_lungs_mediastinum_neck_and_below_split_the_square_without_overlap():
    masks = [region_mask(CHEST_REGIONS[n], SIDE) for n in ("lung_fields", "mediastinum", "neck_top", "below_lungs")]
    assert (np.sum(masks, axis=0) <= 1).all()


def test_a_flat_map_puts_each_region_its_area():
    shares = region_shares(np.ones((SIDE, SIDE)), GENERIC_REGIONS)
    assert shares == pytest.approx(area_shares(GENERIC_REGIONS, SIDE))
    assert shares["centre"] == pytest.approx(0.25)
    assert shares["border"] == pytest.approx(1 - 0.8**2)


def test_shares_ignore_the_overall_scale_and_an_empty_map_has_none():
    heat = box_map((0.3, 0.3, 0.6, 0.6)) + 0.1
    assert region_shares(heat * 7, GENERIC_REGIONS) == pytest.approx(region_shares(heat, GENERIC_REGIONS))
    assert np.isnan(region_shares(np.zeros((SIDE, SIDE)), GENERIC_REGIONS)["centre"])


def test_upsampling_cuts_negative_parts_and_keeps_a_central_peak_central():
    grid = -np.ones((5, 5), dtype=np.float32)
    grid[2, 2] = 1.0
    heat = upsample(grid, SIDE)
    assert heat.shape == (SIDE, SIDE) and heat.min() >= 0
    assert region_shares(heat, GENERIC_REGIONS)["centre"] == pytest.approx(1.0)


def test_peak_cells_are_named_by_their_centre():
    grid = np.zeros((5, 5))
    grid[0, 2] = 1
    assert peak_cell(grid) == (0, 2)
    assert peak_region((0, 2), (5, 5), CHEST) == "neck_top"
    assert peak_region((2, 2), (5, 5), CHEST) == "mediastinum"
    assert peak_region((2, 1), (5, 5), CHEST) == "lung_fields"
    assert peak_region((4, 1), (5, 5), CHEST) == "below_lungs"
    assert peak_region((2, 0), (5, 5), CHEST) == "other"
    assert on_edge((2, 0), (5, 5)) and not on_edge((2, 2), (5, 5))


def test_spread_picks_evenly_and_keeps_short_lists():
    assert spread(3, 8) == [0, 1, 2]
    assert spread(15, 4) == [0, 5, 9, 14]
