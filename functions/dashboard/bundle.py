"""The page's files, read into memory once: each one's bytes, content type and ETag, and the version
that asset URLs carry (`/assets/<version>/app.js`) so a browser may keep them for good."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

# Only the kinds of file a page needs are served; anything else in the folder is left out.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

INDEX = "index.html"
ASSETS = "assets"
# index.html names its assets under this placeholder; the bundle puts the versioned base in its place.
ASSET_BASE_PLACEHOLDER = "{{ASSET_BASE}}"
# ...and names this one where a <link rel="modulepreload"> goes for every module the entry modules import,
# directly or not: the browser then asks for them all at once, instead of one level of imports after another.
# early.js's first: it asks the server who is signed in while the rest loads, as soon as its own are in (a
# browser has only six connections to a host, so the first named are the first fetched).
MODULE_PRELOADS_PLACEHOLDER = "{{MODULE_PRELOADS}}"
ENTRY_MODULES = ("early.js", "app.js")
# The modules import each other by relative path, statically (`import { x } from "./y.js";`).
STATIC_IMPORT = re.compile(r'^import\b[^;]*?\bfrom\s*"\./([^"]+)"', re.MULTILINE)
VERSION_LENGTH = 12
VERSION_PATTERN = re.compile(rf"[0-9a-f]{{{VERSION_LENGTH}}}")


# Text is sent gzip-compressed to a browser that takes it (all do): the page's modules and styles are a
# third of their size so, which a phone on a slow link feels. Compressed once, when the bundle is read, so
# a request costs no CPU for it; kept only where it saves enough to be worth a second representation.
COMPRESSIBLE = ("text/", "image/svg+xml")
GZIP_WORTH_IT = 0.9  # the compressed body at most this share of the plain one


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str  # quoted, as it goes on the wire
    gzipped: bytes | None = None  # the body gzip-compressed, when that pays

    @classmethod
    def of(cls, body: bytes, content_type: str) -> StaticFile:
        digest = hashlib.sha256(body).hexdigest()[:24]
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if content_type.startswith(COMPRESSIBLE) else None
        return cls(body, content_type, f'"{digest}"',
                   gzipped if gzipped is not None and len(gzipped) <= len(body) * GZIP_WORTH_IT else None)

    @property
    def gzip_etag(self) -> str:
        """The compressed representation's own validator (a cache keeps the one it was sent)."""
        return f'{self.etag[:-1]}-gzip"'


@dataclass(frozen=True)
class Bundle:
    index: StaticFile
    assets: dict[str, StaticFile]  # by path under assets/, e.g. "app.js"
    version: str

    @classmethod
    def load(cls, directory: Path) -> Bundle:
        root = directory / ASSETS
        assets: dict[str, StaticFile] = {}
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            content_type = CONTENT_TYPES.get(path.suffix.lower())
            if path.is_file() and content_type and not any(part.startswith(".") for part in relative.parts):
                assets[relative.as_posix()] = StaticFile.of(path.read_bytes(), content_type)
        # The version changes whenever any asset does: a new release never meets an old cached file.
        fingerprint = hashlib.sha256("".join(f"{name}={file.etag};" for name, file in assets.items()).encode())
        version = fingerprint.hexdigest()[:VERSION_LENGTH]
        base = f"/{ASSETS}/{version}"
        preloads = "\n  ".join(f'<link rel="modulepreload" href="{base}/{name}">'
                               for name in imported_modules(assets, ENTRY_MODULES))
        html = ((directory / INDEX).read_text("utf-8").replace(MODULE_PRELOADS_PLACEHOLDER, preloads)
                .replace(ASSET_BASE_PLACEHOLDER, base))
        return cls(StaticFile.of(html.encode("utf-8"), CONTENT_TYPES[".html"]), assets, version)

    def asset(self, path: str) -> tuple[StaticFile | None, bool]:
        """The file a path under /assets/ names, and whether the path carries this very version (so it
        may be cached for good). A path is only ever a key in the table, never a file name."""
        head, _, rest = path.partition("/")
        if head == self.version:
            return self.assets.get(rest), True
        if VERSION_PATTERN.fullmatch(head):
            # Another release's: a page that loaded just before a restart. Today's file in its place would
            # make that page run a mix of two releases' modules; a reload brings this one's page instead.
            return None, False
        return self.assets.get(path), False

def imported_modules(assets: dict[str, StaticFile], entries: tuple[str, ...]) -> list[str]:
    """Every module the entries import, directly or through others: the first entry's first, nearest first
    (the entries themselves are named by index.html's script tags)."""
    found: list[str] = []
    queue = list(entries)
    while queue:
        module = assets.get(queue.pop(0))
        for name in STATIC_IMPORT.findall(module.body.decode("utf-8")) if module else ():
            if name not in entries and name not in found:
                found.append(name)
                queue.append(name)
    return found
