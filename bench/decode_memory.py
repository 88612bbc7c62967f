"""How much memory one hostile or very large upload costs a worker: peak RSS growth per case.

Usage: python bench/decode_memory.py [--case NAME ...]

Each case runs in a fresh Python process: the app with the production settings on a scratch SQLite
database and photo folder, warmed up with one real upload to each endpoint (models loaded), then one
upload of the case's image through Flask's test client, to `POST /predict` (anonymous: nothing kept)
and `POST /api/v1/predictions` (kept: the photo is stored). Reported: the answer's status and code,
and how far the process's peak RSS (ru_maxrss) rose above the warmed-up peak.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.upload_profile import issue_token, production_app, release, sample_image  # noqa: E402

MODALITY = "skin_lesion"
ENDPOINTS = ("/predict", "/api/v1/predictions")


def _encoded(image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _flat(size: tuple[int, int], mode: str = "RGB"):
    """A near-uniform image: a few hundred KB of file for tens of megapixels (what a bomb looks like)."""
    from PIL import Image, ImageDraw

    image = Image.new(mode, size, (200, 150, 120, 255)[: len(mode)])
    ImageDraw.Draw(image).ellipse((size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2), fill="brown")
    return image


def _photo(size: tuple[int, int], resample: int = 3):
    """The skin-lesion fixture blown up: a photo the gate accepts, at a camera's size (bicubic), or as a
    small PNG that the gate accepts too (nearest neighbour: every pixel repeated, which deflate folds away)."""
    from PIL import Image

    with Image.open(sample_image()) as image:
        return image.convert("RGB").resize(size, resample)


CASES = {
    "png-40mp-flat": lambda: _encoded(_flat((7300, 5475)), "PNG", optimize=True),
    "png-40mp-photo": lambda: _encoded(_photo((7300, 5475), resample=0), "PNG", optimize=True),
    "png-40mp-rgba-flat": lambda: _encoded(_flat((7300, 5475), "RGBA"), "PNG", optimize=True),
    "png-16mp-rgba-flat": lambda: _encoded(_flat((4600, 3470), "RGBA"), "PNG", optimize=True),
    "jpeg-40mp-photo": lambda: _encoded(_photo((7300, 5475)), "JPEG", quality=85),
    "jpeg-12mp-photo": lambda: _encoded(_photo((4032, 3024)), "JPEG", quality=90),
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _post(client, path: str, data: bytes, token: str) -> tuple[int, str]:
    # POST /predict without a token is the anonymous classification (nothing kept); with one it stores.
    headers = {"Authorization": f"Bearer {token}"} if path != "/predict" else {}
    body = {"modality": MODALITY, "file": (io.BytesIO(data), "upload")}
    response = client.post(path, data=body, headers=headers, content_type="multipart/form-data")
    code = (response.get_json(silent=True) or {}).get("error", {}).get("code", "")
    return response.status_code, code


def run_case(name: str, endpoint: str) -> dict:
    """One case in this process: warm up, then one upload of the case's image to the endpoint."""
    data = CASES[name]()
    warm = sample_image().read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        extra = {"ANONYMOUS_PREDICT": "1", "ANONYMOUS_PREDICT_RATE": "1000 per minute", "MAX_UPLOAD_MB": "16"}
        app = production_app(f"sqlite:///{folder / 'bench.db'}", folder, extra)
        client = app.test_client()
        token = issue_token(app)
        for path in ("/predict", "/api/v1/predictions"):
            assert _post(client, path, warm, token)[0] in (200, 201), path
        before = _peak_mib()
        status, code = _post(client, endpoint, data, token)
        growth = round(_peak_mib() - before, 1)
        release(app)
    return {
        "case": name,
        "endpoint": endpoint,
        "file_kib": len(data) // 1024,
        "status": status,
        "code": code,
        "peak_rss_growth_mib": growth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: every case")
    parser.add_argument("--endpoint", action="append", choices=ENDPOINTS, help="default: both")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        print(json.dumps(run_case(args.case[0], args.endpoint[0])))
        return
    for name in args.case or CASES:
        for endpoint in args.endpoint or ENDPOINTS:
            # A fresh process per run: ru_maxrss only ever grows, so runs must not share one.
            command = [sys.executable, __file__, "--in-process", "--case", name, "--endpoint", endpoint]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = done.stdout.strip().splitlines()
            print(lines[-1] if done.returncode == 0 and lines else f"{name} {endpoint}: failed\n{done.stderr[-2000:]}")


if __name__ == "__main__":
    main()
