"""Static files with a content version in their URLs, cached for a year by that version, and gzip'd once in memory.

Every URL built for the `static` endpoint gets `?v=<first 12 hex of the file's sha256>`. A request whose `v` is the
current file's is sent `Cache-Control: public, max-age=31536000, immutable`; any other (no `v`, an old one) is
revalidated (`no-cache`), so a page cached with an old URL never pins an old file. A file is hashed (and, if it is
text, compressed) the first time it is asked for, and again only when its size, modification time or inode change.

Only these files are compressed. Pages and API answers are sent as they are: a page carries its CSRF value beside
text the caller controls (a query string, a form's input), and compressing a secret together with
attacker-influenced text lets whoever watches the encrypted sizes recover the secret (BREACH).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from flask import Flask, Response, current_app, request, send_file
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

EXTENSION = "static_files"
VERSION_ARG = "v"
VERSION_HEX_DIGITS = 12
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Text worth compressing; images (JPEG, PNG) already are.
COMPRESSIBLE_SUFFIXES = frozenset({".css", ".js", ".json", ".map", ".svg", ".txt"})
GZIP_LEVEL = 9  # done once per file, so the smallest output is worth the time


@dataclass(frozen=True)
class StaticFile:
    """What is known about one file at one content: where it is, its version, and its gzip'd bytes if smaller."""

    path: str
    stat_key: tuple[int, int, int]
    sha256: str
    mimetype: str
    gzipped: bytes | None

    @property
    def version(self) -> str:
        return self.sha256[:VERSION_HEX_DIGITS]


class StaticFiles:
    """The files under one folder, each read once per content and kept: its hash, and for text its gzip'd bytes."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = str(folder)
        self._files: dict[str, StaticFile] = {}
        self._lock = threading.Lock()

    def get(self, filename: str) -> StaticFile | None:
        """The file filename names under the folder, None if there is none (or the name leads outside it)."""
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not S_ISREG(stat.st_mode):
            return None
        stat_key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        known = self._files.get(path)
        if known is not None and known.stat_key == stat_key:
            return known
        with self._lock:
            known = self._files.get(path)
            if known is None or known.stat_key != stat_key:
                known = self._files[path] = _read(path, stat_key)
        return known

    def version(self, filename: str) -> str | None:
        found = self.get(filename)
        return found.version if found else None


def _read(path: str, stat_key: tuple[int, int, int]) -> StaticFile:
    data = Path(path).read_bytes()
    gzipped = None
    if Path(path).suffix.lower() in COMPRESSIBLE_SUFFIXES:
        # mtime=0: the same bytes on every node, so one node's ETag holds on another.
        compressed = gzip.compress(data, GZIP_LEVEL, mtime=0)
        gzipped = compressed if len(compressed) < len(data) else None
    mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return StaticFile(path, stat_key, hashlib.sha256(data).hexdigest(), mimetype, gzipped)


def init_static_files(app: Flask) -> None:
    """Version the static URLs the app builds, and serve the `static` endpoint with the cache and encoding above."""
    app.extensions[EXTENSION] = StaticFiles(app.static_folder)

    @app.url_defaults
    def _add_static_version(endpoint: str, values: dict) -> None:
        if endpoint != "static" or VERSION_ARG in values or "filename" not in values:
            return
        version = current_app.extensions[EXTENSION].version(values["filename"])
        if version is not None:
            values[VERSION_ARG] = version

    app.view_functions["static"] = send_static_file


def send_static_file(filename: str) -> Response:
    """The `static` endpoint: the file, gzip'd when the client takes it and it is text, cached by its version."""
    found = current_app.extensions[EXTENSION].get(filename)
    if found is None:
        raise NotFound()
    if found.gzipped is not None and request.accept_encodings["gzip"] and not request.range:
        response = Response(found.gzipped, mimetype=found.mimetype)
        response.content_encoding = "gzip"
        response.set_etag(f"{found.sha256}-gzip")
        response.last_modified = found.stat_key[0] / 1e9
        response = response.make_conditional(request)
    else:
        # The content hash as ETag: the same on every node, whatever time each deploy gave the file.
        response = send_file(found.path, mimetype=found.mimetype, etag=found.sha256, conditional=True)
    if found.gzipped is not None:
        response.vary.add("Accept-Encoding")
    current = request.args.get(VERSION_ARG) == found.version
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    return response
