from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from cnn_model.data import list_class_folder, load_arrays
from cnn_model.modalities import MODALITIES, SPECS
from cnn_model.preprocessing import ImageLoadError, load_image, preprocess_for_model
from cnn_model.runtime import ModelRegistry
from tests.support.images import sample_image


@pytest.mark.parametrize("modality", MODALITIES)
def test_training_and_serving_preprocess_identically(modality, datasets_root):
    spec = SPECS[modality]
    samples = list_class_folder(datasets_root / modality / "val", spec)[:5]
    training_batch, _ = load_arrays(samples, spec, list(spec.class_names))
    for sample, trained_on in zip(samples, training_batch, strict=True):
        served = preprocess_for_model(sample.path.read_bytes(), spec)
        assert served.shape == (spec.input_size, spec.input_size, 3)
        assert served.dtype == np.float32
        np.testing.assert_array_equal(trained_on.astype(np.float32), served)


def test_runner_feeds_the_network_the_shared_preprocessing():
    runner = ModelRegistry().get("skin_lesion")
    path = sample_image("skin_lesion")
    probabilities, _ = runner.run(preprocess_for_model(path, runner.spec)[None])
    prediction = runner.predict(path)
    assert prediction.probabilities == pytest.approx(dict(zip(runner.spec.class_names, probabilities[0], strict=True)))


def test_grayscale_modalities_repeat_one_channel():
    rgb = Image.new("RGB", (300, 200), (200, 30, 30))
    array = preprocess_for_model(rgb, SPECS["chest_xray"])
    assert np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 1] == array[..., 2])


def test_padding_keeps_the_aspect_ratio_of_cell_crops():
    tall = Image.new("RGB", (40, 120), (10, 10, 10))
    tall.paste((250, 250, 250), (0, 0, 40, 1))  # the border mean decides the padding colour
    array = preprocess_for_model(tall, SPECS["cervical_cytology"])
    size = SPECS["cervical_cytology"].input_size
    # A 1:3 crop letterboxed into a square leaves a third of the width for the cell.
    dark_columns = np.flatnonzero(array[size // 2, :, 0] < 20)
    assert abs(len(dark_columns) - size / 3) <= 2


def test_a_mask_hides_the_margins_behind_the_kept_regions_mean_colour():
    unmasked = replace(SPECS["chest_xray"], input_mask=None)
    spec = replace(SPECS["chest_xray"], input_mask=(0.25, 0.0, 0.0, 0.5))
    image = Image.new("L", (100, 100), 60)
    image.paste(61, (0, 50, 100, 100))  # a kept region whose mean is not a whole grey level
    image.paste(250, (0, 0, 100, 10))  # a bright marker along the top edge
    array = preprocess_for_model(image, spec)[..., 0]
    size = spec.input_size
    top, left_width = size // 4, size // 2
    kept = preprocess_for_model(image, unmasked)[top:, :left_width, 0]
    np.testing.assert_array_equal(array[top:, :left_width], kept)
    fill = np.floor(kept.mean())  # a whole grey level, as a uint8 training set stores it
    assert 60 < kept.mean() < 61 and fill == 60
    assert np.all(array[:top] == fill) and np.all(array[:, left_width:] == fill)
    assert array.max() < 250  # the marker is gone


def test_sixteen_bit_xrays_are_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16)
    array = preprocess_for_model(Image.fromarray(ramp), replace(SPECS["chest_xray"], input_mask=None))
    assert array.min() < 5 and array.max() > 250


def test_unreadable_bytes_raise_a_clear_error():
    with pytest.raises(ImageLoadError, match="not a readable image"):
        load_image(b"this is not an image")


@pytest.mark.parametrize(
    "make_image",
    [
        lambda: Image.new("RGBA", (120, 90), (200, 40, 40, 0)),  # transparent: flattened onto white
        lambda: Image.fromarray(np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)),  # 12-bit X-ray
        lambda: Image.new("P", (50, 70), 3),
    ],
)
def test_upload_path_and_cli_path_give_the_model_identical_input(make_image):
    import io

    from utils.images import validate_image_upload

    buffer = io.BytesIO()
    make_image().save(buffer, format="PNG")
    data = buffer.getvalue()
    uploaded = validate_image_upload(data, max_bytes=10**7, max_pixels=10**7).image
    for spec in SPECS.values():
        np.testing.assert_array_equal(preprocess_for_model(uploaded, spec), preprocess_for_model(data, spec))


def test_a_sliver_of_an_image_still_preprocesses_at_full_length():
    for length in (5000, 303):
        ramp = np.tile(np.linspace(0, 255, length).astype(np.uint8)[None, :, None], (1, 1, 3))
        for sliver in (Image.fromarray(ramp), Image.fromarray(ramp.transpose(1, 0, 2))):
            array = preprocess_for_model(sliver, SPECS["cervical_cytology"])
            assert array.shape == (160, 160, 3)
            # The ramp runs from edge to edge: dark at the first pixel, bright at the 160th.
            line = array[79, :, 0] if sliver.width > 1 else array[:, 79, 0]
            assert line[0] < 30 and line[159] > 225


def test_float_images_with_nan_are_refused():
    with pytest.raises(ImageLoadError, match="NaN"):
        preprocess_for_model(
            Image.fromarray(np.array([[0, np.nan], [0.5, 2.0]], dtype=np.float32)), SPECS["chest_xray"]
        )
