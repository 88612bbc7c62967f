from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"the labelled datasets are not beside the checkout ({DATASETS})")
    return DATASETS


@pytest.fixture(scope="session")
def sample_image_path(datasets_root):
    def pick(modality: str) -> Path:
        return sorted((datasets_root / modality / "val").glob("*/*"))[0]

    return pick
