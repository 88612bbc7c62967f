"""The history page a patient opens on a phone: server render time, page weight, and load in Chromium.

Usage: python bench/pages.py [--results 60] [--repeats 30] [--visits 5] [--workers 2]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres | --sqlite]

The app runs with the production settings on a scratch database (a fresh PostgreSQL database, dropped
at the end, or a temporary SQLite file) and a temporary photo folder. A patient account gets --results
results made through PredictionManager.create from the committed fixture images (every modality, in
turn), so that its history is more than one page and every row has a real thumbnail. Then:

1. Server render time of GET /history through Flask's test client, signed in through the sign-in form
   (session cookies, CSRF) as a browser is: the first view, then the median and p95 of --repeats views
   of the first page, of a filtered page and of the second page (the "Older" link). The thumbnails are
   drawn on their first request, so they are timed apart: first request (drawn) and again (stored).
2. Page weight: the HTML and every subresource it references (stylesheets, scripts, icons, images,
   and what the stylesheets reference: fonts, images), each fetched once through the test client; bytes
   as the app sends them, and gzip'd (level 6) for the text kinds, as a compressing proxy would send
   them; with each kind's Cache-Control.
3. With Chromium (/usr/bin/chromium): the app under gunicorn (gunicorn.conf.py) on a free loopback
   port, signed in through the real sign-in form with Playwright, /history opened at 390x844 and at
   1280x800: the HTML's first byte, DOMContentLoaded and load from Navigation Timing, the bytes
   transferred and the requests from Resource Timing (Chromium counts 300 bytes of headers per answer);
   the median of --visits first visits (browser cache emptied, cookies kept) and second visits (what
   the cache headers save). The thumbnails are already stored by then (drawn in part 2). Without
   Chromium this part is skipped.

Prints one table and the load average. Everything started is stopped again, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import io
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import astuple, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    LOOPBACK,
    REPO_ROOT,
    add_postgres_argument,
    app_log_in,
    free_port,
    load_average,
    postgres_database,
    production_env,
    service,
    stop_on_sigterm,
    tail,
)
from bench.upload_profile import PASSWORD, production_app, release  # noqa: E402

HISTORY_PATH = "/history"
FIXTURE_IMAGES = REPO_ROOT / "tests" / "fixtures" / "images"
CHROMIUM = Path("/usr/bin/chromium")
# The browser tests' flags (tests/e2e/conftest.py): no sandbox in a container, nothing fetched from outside.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
# Chromium's Resource Timing counts a flat 300 bytes of headers per answer over the network: a full answer's
# transferSize is its body plus 300, a 304's (a cached copy revalidated) is 300, and the cache's own is 0.
CHROMIUM_HEADER_BYTES = 300
WARM_UP_VISITS = 4
VIEWPORTS = {"phone 390x844": {"width": 390, "height": 844}, "desktop 1280x800": {"width": 1280, "height": 800}}
TEXT_KINDS = ("html", "stylesheet", "script", "icon")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)""")
FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".otf", ".eot")
# Navigation Timing and Resource Timing as the page saw them, read once the network is idle.
PAGE_TIMINGS_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const entries = [nav, ...performance.getEntriesByType('resource')];
  return {
    ttfb: nav.responseStart, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
    entries: entries.map(e => ({name: e.name, transfer: e.transferSize, body: e.decodedBodySize})),
  };
}"""


# -- the pages' parts ---------------------------------------------------------------------------


class PageParts(HTMLParser):
    """What a page references (stylesheets, scripts, icons, images), its form's CSRF value and its "Older" link."""

    def __init__(self) -> None:
        super().__init__()
        self.subresources: list[tuple[str, str]] = []  # (kind, url), in document order
        self.csrf_token: str | None = None
        self.next_page: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        rel = a.get("rel", "").split()
        if tag == "link" and "stylesheet" in rel:
            self.subresources.append(("stylesheet", a["href"]))
        elif tag == "link" and "icon" in rel:
            self.subresources.append(("icon", a["href"]))
        elif tag == "script" and a.get("src"):
            self.subresources.append(("script", a["src"]))
        elif tag in ("img", "source"):
            for url in [a.get("src", "")] + [c.split()[0] for c in a.get("srcset", "").split(",") if c.strip()]:
                if url and not url.startswith("data:"):
                    self.subresources.append(("thumbnail" if url.endswith("/thumbnail") else "image", url))
        elif tag == "input" and a.get("name") == "csrf_token" and self.csrf_token is None:
            self.csrf_token = a.get("value")
        elif tag == "a" and "next" in rel:
            self.next_page = a.get("href")


def parse(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    parts.close()
    return parts


def stylesheet_references(css: str, base: str) -> list[tuple[str, str]]:
    """(kind, url) of what a stylesheet loads: fonts and images."""
    found = []
    for url in CSS_URL.findall(css):
        if url.startswith(("data:", "#")):
            continue
        kind = "font" if urlsplit(url).path.lower().endswith(FONT_SUFFIXES) else "image"
        found.append((kind, urljoin(base, url)))
    return found


# -- the in-process part: render times and weight -----------------------------------------------


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p95_ms: float
    runs: int


@dataclass
class Weight:
    """Bytes of one kind of resource, as sent and gzip'd, and the Cache-Control it came with."""

    count: int = 0
    sent: int = 0
    gzipped: int = 0
    cache_control: set[str] = field(default_factory=set)


@dataclass
class InProcess:
    first_view_ms: float
    views: dict[str, Timing]
    thumbnail_drawn_ms: float
    thumbnail_stored: Timing
    weights: dict[str, Weight]
    html_encoding: str


def fixture_images() -> list[tuple[str, bytes]]:
    """(modality, bytes) of every committed fixture image, the modalities taking turns."""
    by_modality: dict[str, list[bytes]] = {}
    for path in sorted(FIXTURE_IMAGES.glob("*/*/*")):
        if path.suffix.lower() not in (".jpg", ".jpeg"):
            continue
        by_modality.setdefault(path.parent.parent.name, []).append(path.read_bytes())
    rounds = max(len(images) for images in by_modality.values())
    return [
        (modality, images[i % len(images)]) for i in range(rounds) for modality, images in sorted(by_modality.items())
    ]


def make_patient(app, results: int) -> tuple[str, Counter]:
    """A patient account with `results` results made through the managers; returns its email and the modalities."""
    from constants import Role
    from managers.predictions import PredictionManager
    from managers.users import UserManager

    images = fixture_images()
    made: Counter = Counter()
    with app.app_context():
        email = f"bench-{secrets.token_hex(4)}@example.org"
        patient = UserManager.create(email, PASSWORD, role=Role.PATIENT)
        for i in range(results):
            modality, data = images[i % len(images)]
            PredictionManager.create(patient, modality, io.BytesIO(data), f"bench result {i}")
            made[modality] += 1
    return email, made


def sign_in(client, email: str) -> None:
    """Sign in through the sign-in form, as a browser does: its CSRF value, then the session cookies."""
    form = client.get("/login")
    token = parse(form.get_data(as_text=True)).csrf_token
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in answered {response.status_code}: {response.get_data()[:300]!r}")


def get_ok(client, url: str):
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.get_data()[:300]!r}")
    return response


def timed_get_ms(client, url: str) -> float:
    started = time.perf_counter()
    get_ok(client, url)
    return (time.perf_counter() - started) * 1000


def timing(milliseconds: list[float]) -> Timing:
    ordered = sorted(milliseconds)
    return Timing(statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], len(ordered))


def add_weight(weights: dict[str, Weight], kind: str, response) -> None:
    body = response.get_data()
    weight = weights.setdefault(kind, Weight())
    weight.count += 1
    weight.sent += len(body)
    weight.gzipped += len(gzip.compress(body, 6)) if kind in TEXT_KINDS else len(body)
    weight.cache_control.add(response.headers.get("Cache-Control", "(none)"))


def measure_in_process(app, email: str, repeats: int, filtered: str) -> InProcess:
    client = app.test_client()
    sign_in(client, email)
    started = time.perf_counter()
    first = get_ok(client, HISTORY_PATH)
    first_view_ms = (time.perf_counter() - started) * 1000
    html = first.get_data(as_text=True)
    parts = parse(html)
    if parts.next_page is None:
        raise RuntimeError("the history's first page has no Older link: make more results (--results)")
    pages = {"first page": HISTORY_PATH, "filtered": filtered, "second page (Older)": parts.next_page}
    views = {name: timing([timed_get_ms(client, url) for _ in range(repeats)]) for name, url in pages.items()}

    weights: dict[str, Weight] = {}
    add_weight(weights, "html", first)
    thumbnails = [url for kind, url in parts.subresources if kind == "thumbnail"]
    started = time.perf_counter()
    for url in thumbnails:  # their first request draws and stores them
        add_weight(weights, "thumbnail", get_ok(client, url))
    thumbnail_drawn_ms = (time.perf_counter() - started) * 1000 / max(len(thumbnails), 1)
    pending = [(kind, urljoin(HISTORY_PATH, url)) for kind, url in parts.subresources if kind != "thumbnail"]
    seen = set()
    while pending:
        kind, url = pending.pop(0)
        if url in seen:
            continue
        seen.add(url)
        response = get_ok(client, url)
        add_weight(weights, kind, response)
        if kind == "stylesheet":
            pending += stylesheet_references(response.get_data(as_text=True), url)
    stored = timing([timed_get_ms(client, url) for _ in range(3) for url in thumbnails])
    return InProcess(
        first_view_ms=first_view_ms,
        views=views,
        thumbnail_drawn_ms=thumbnail_drawn_ms,
        thumbnail_stored=stored,
        weights=weights,
        html_encoding=first.headers.get("Content-Encoding", "none"),
    )


# -- Chromium against gunicorn --------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """One visit's figures (or the median of several visits')."""

    first_byte_ms: float  # the HTML's first byte, from the navigation's start
    dom_content_loaded_ms: float
    load_ms: float
    transferred: float  # bytes over the network: headers and bodies, the page's and its subresources'
    requests: float  # answered over the network, a 304 included
    revalidated: float  # of which 304 Not Modified
    from_cache: float  # served by the browser's cache without asking
    thumbnails: float  # thumbnails the page loaded (the rest are lazy, below the fold)


def wait_until_answering(process, port: int, path: str, limit_seconds: float = 90) -> None:
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{tail(process.log_path)}")
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {limit_seconds} s:\n{tail(process.log_path)}")


@contextlib.contextmanager
def gunicorn(database_url: str, folder: Path, log_dir: Path, workers: int):
    """The app under gunicorn (gunicorn.conf.py, production settings) on the database and photo folder; yields
    its address."""
    port = free_port()
    env = production_env(database_url, folder, port, workers)
    command = [sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "gunicorn.conf.py")]
    with service("medsight", command, env=env, cwd=REPO_ROOT, log_dir=log_dir) as process:
        wait_until_answering(process, port, "/login")
        yield f"http://{LOOPBACK}:{port}"


def visit(page, url: str) -> Visit:
    """Open url in page, wait until the network is idle, and read what the page's timing entries say."""
    page.goto(url, wait_until="networkidle")
    timings = page.evaluate(PAGE_TIMINGS_JS)
    entries = timings["entries"]
    over_network = [e for e in entries if e["transfer"] > 0]
    return Visit(
        first_byte_ms=timings["ttfb"],
        dom_content_loaded_ms=timings["dcl"],
        load_ms=timings["load"],
        transferred=sum(e["transfer"] for e in over_network),
        requests=len(over_network),
        revalidated=sum(1 for e in over_network if e["transfer"] <= CHROMIUM_HEADER_BYTES),
        from_cache=sum(1 for e in entries if e["transfer"] == 0 and e["body"] > 0),
        thumbnails=sum(1 for e in entries if e["name"].endswith("/thumbnail")),
    )


def median_visit(visits: list[Visit]) -> Visit:
    return Visit(*(statistics.median(values) for values in zip(*(astuple(v) for v in visits), strict=True)))


def sign_in_with_browser(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if not page.get_by_role("button", name="Sign out").is_visible():
        raise RuntimeError(f"Chromium did not get signed in (at {page.url})")


def measure_in_chromium(base_url: str, email: str, visits: int) -> dict[str, Visit]:
    """Median first and second visit of /history at each viewport, each viewport in a browser context of its own."""
    from playwright.sync_api import sync_playwright

    medians = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for name, viewport in VIEWPORTS.items():
                context = browser.new_context(base_url=base_url, viewport=viewport, locale="en-GB")
                try:
                    page = context.new_page()
                    sign_in_with_browser(page, email)
                    for _ in range(WARM_UP_VISITS):  # the workers' templates compiled, their connections open
                        page.goto(HISTORY_PATH, wait_until="networkidle")
                    first, second = [], []
                    for _ in range(visits):
                        # Empty the cache (signing in, or the last round, filled it), keep the cookies.
                        context.new_cdp_session(page).send("Network.clearBrowserCache")
                        page.close()
                        page = context.new_page()
                        first.append(visit(page, HISTORY_PATH))
                        page.close()
                        page = context.new_page()
                        second.append(visit(page, HISTORY_PATH))
                    medians[f"{name}, first visit"] = median_visit(first)
                    medians[f"{name}, second visit"] = median_visit(second)
                finally:
                    context.close()
        finally:
            browser.close()
    return medians


# -- the report -----------------------------------------------------------------------------------


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def print_table(measured: InProcess, visits: dict[str, Visit] | None, chromium_note: str, filtered: str) -> None:
    rows: list[tuple[str, str]] = [
        ("GET /history, first view", f"{measured.first_view_ms:.1f} ms"),
    ]
    for name, timing in measured.views.items():
        rows.append(
            (f"GET /history {name}, median / p95", f"{timing.median_ms:.1f} / {timing.p95_ms:.1f} ms ({timing.runs})")
        )
    rows.append(("thumbnail, first request (drawn), mean", f"{measured.thumbnail_drawn_ms:.1f} ms"))
    stored = measured.thumbnail_stored
    rows.append(("thumbnail, stored, median / p95", f"{stored.median_ms:.1f} / {stored.p95_ms:.1f} ms ({stored.runs})"))
    total = Weight()
    for kind, weight in measured.weights.items():
        rows.append(
            (
                f"weight: {kind} ({weight.count})",
                f"{_kib(weight.sent)}, gzip'd {_kib(weight.gzipped)}; "
                f"Cache-Control {' | '.join(sorted(weight.cache_control))}",
            )
        )
        total.count += weight.count
        total.sent += weight.sent
        total.gzipped += weight.gzipped
    rows.append((f"weight: total ({total.count})", f"{_kib(total.sent)}, gzip'd {_kib(total.gzipped)}"))
    if visits is None:
        rows.append(("Chromium", chromium_note))
    else:
        for name, v in visits.items():
            rows.append(
                (
                    f"Chromium {name}: first byte / DOMContentLoaded / load",
                    f"{v.first_byte_ms:.0f} / {v.dom_content_loaded_ms:.0f} / {v.load_ms:.0f} ms",
                )
            )
            rows.append(
                (
                    f"Chromium {name}: over the network",
                    f"{_kib(v.transferred)} in {v.requests:.0f} requests ({v.revalidated:.0f} of them 304); "
                    f"{v.from_cache:.0f} from the browser's cache; {v.thumbnails:.0f} thumbnails loaded",
                )
            )
    width = max(len(label) for label, _ in rows) + 2
    print(f"\n{'figure':<{width}}value")
    print("-" * (width + 60))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print(
        f"filtered: {filtered}; the HTML is sent with Content-Encoding: {measured.html_encoding} "
        "(gzip'd sizes are what a compressing proxy would send; images are counted as they are)"
    )
    if visits is not None:
        print(chromium_note)


def run(database_url: str, args, log_dir: Path) -> None:
    from cnn_model.modalities import MODALITIES

    with tempfile.TemporaryDirectory(prefix="medsight-pages-") as tmp:
        folder = Path(tmp)
        with app_log_in(log_dir / "app.log"):
            app = production_app(database_url, folder)
            try:
                started = time.perf_counter()
                email, made = make_patient(app, args.results)
                mix = ", ".join(f"{m} {n}" for m, n in sorted(made.items()))
                print(f"{args.results} results made in {time.perf_counter() - started:.1f} s ({mix})", flush=True)
                filtered = f"{HISTORY_PATH}?modality={MODALITIES[0]}&flagged=no"
                measured = measure_in_process(app, email, args.repeats, filtered)
            finally:
                release(app)
        load = load_average()
        visits, note = None, "skipped: no chromium"
        if CHROMIUM.exists():
            print(f"Chromium against gunicorn ({args.workers} workers) ...", flush=True)
            with gunicorn(database_url, folder, log_dir, args.workers) as base_url:
                visits = measure_in_chromium(base_url, email, args.visits)
            note = (
                f"Chromium: median of {args.visits} visits each; gunicorn {args.workers} workers on loopback, "
                "one browser context per viewport; "
                f"first visit with the browser cache emptied after signing in, thumbnails already stored "
                f"({load_average()})"
            )
    print_table(measured, visits, note, filtered)
    print(f"server render and weight measured at {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=60, help="results in the patient's history")
    parser.add_argument("--repeats", type=int, default=30, help="timed views of each page")
    parser.add_argument("--visits", type=int, default=5, help="first and second visits in Chromium, per viewport")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for the Chromium part")
    add_postgres_argument(parser)
    parser.add_argument("--sqlite", action="store_true", help="on a temporary SQLite file instead")
    args = parser.parse_args()
    stop_on_sigterm()
    print(f"start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="medsight-pages-logs-") as logs:
        if args.sqlite:
            with tempfile.TemporaryDirectory(prefix="medsight-pages-db-") as tmp:
                print("database: a temporary SQLite file")
                run(f"sqlite:///{tmp}/bench.sqlite3", args, Path(logs))
        else:
            with postgres_database(args.postgres) as url:
                print("database: a scratch PostgreSQL database")
                run(url, args, Path(logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
