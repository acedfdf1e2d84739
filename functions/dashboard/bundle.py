"""The page's files, read into memory once: each one's bytes, content type and ETag, and the version
that asset URLs carry (`/assets/<version>/app.js`) so a browser may keep them for good."""

from __future__ import annotations

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
VERSION_LENGTH = 12
VERSION_PATTERN = re.compile(rf"[0-9a-f]{{{VERSION_LENGTH}}}")


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str  # quoted, as it goes on the wire

    @classmethod
    def of(cls, body: bytes, content_type: str) -> StaticFile:
        return cls(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:24]}"')


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
        html = (directory / INDEX).read_text("utf-8").replace(ASSET_BASE_PLACEHOLDER, f"/{ASSETS}/{version}")
        return cls(StaticFile.of(html.encode("utf-8"), CONTENT_TYPES[".html"]), assets, version)

    def asset(self, path: str) -> tuple[StaticFile | None, bool]:
        """The file a path under /assets/ names, and whether the path carries this very version (so it
        may be cached for good). A path is only ever a key in the table, never a file name."""
        head, _, rest = path.partition("/")
        if head == self.version:
            return self.assets.get(rest), True
        if VERSION_PATTERN.fullmatch(head):
            # A page loaded before a restart asks for its own version: today's file, but not cached for good.
            return self.assets.get(rest), False
        return self.assets.get(path), False
