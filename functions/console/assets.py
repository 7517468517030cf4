"""Static files of the console and the API docs, served by the app itself under /static/.

No CDN at run time (warehouse networks and private VPCs often have no internet): the vendored
packages (static/vendor/, see infra/scripts/vendor-assets.sh) and the console's own CSS and
JavaScript are read from the package, kept in memory, and gzip-compressed once for clients that
accept it (API Gateway HTTP APIs do not compress). Vendored paths carry their version, so they are
cached as immutable; the console's own files are too when asked for with their `?v=` digest.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"
STATIC_PATH = STATIC_PREFIX + "/{path:path}"
IMMUTABLE = "public, max-age=31536000, immutable"
# Text worth compressing; images are compressed already.
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain", ".svg": "image/svg+xml"}

router = APIRouter()


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    digest: str


# Far more than the folder holds (17 files): a bound, not a working limit.
MAX_CACHED = 256
_assets: dict[str, Asset] = {}
_lock = threading.Lock()


def _media_type(path: Path) -> str:
    if path.suffix in TYPES:
        return TYPES[path.suffix]
    if path.suffix == "" or path.name == "SHA256SUMS":  # LICENSE, NOTICE
        return "text/plain"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def canonical(relative: str) -> str | None:
    """The one spelling of a file under STATIC_DIR that is served, or None for any other spelling.

    `vendor/./x`, `vendor//x`, `a/../x`, a trailing slash or a path out of the folder name no file:
    the path must be the file's own path relative to the folder, as resolved.
    """
    if not relative or "\x00" in relative:
        return None
    try:
        path = (STATIC_DIR / relative).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        return None
    name = path.relative_to(STATIC_DIR).as_posix()
    return name if name == relative else None


def load(relative: str) -> Asset | None:
    """The file at `relative` under STATIC_DIR, or None when that is not a file's canonical path.

    Cached by canonical path only, so the cache holds at most one copy of each file of the folder
    (MAX_CACHED bounds it even should the folder grow): no spelling of a URL can make it grow.
    """
    cached = _assets.get(relative)
    if cached is not None:
        return cached
    name = canonical(relative)
    if name is None:
        return None
    path = STATIC_DIR / name
    body = path.read_bytes()
    media_type = _media_type(path)
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    compress = len(body) > 1024 and media_type.startswith(COMPRESSIBLE)
    digest = hashlib.sha256(body).hexdigest()
    asset = Asset(
        body=body,
        gzipped=gzip.compress(body, compresslevel=6, mtime=0) if compress else None,
        media_type=media_type,
        etag=f'"{digest[:32]}"',
        digest=digest[:12],
    )
    with _lock:
        if len(_assets) < MAX_CACHED:
            _assets[name] = asset
    return asset


def static_url(relative: str) -> str:
    """The URL of one of the console's own files, with its digest so it can be cached for good."""
    asset = load(relative)
    if asset is None:
        raise FileNotFoundError(relative)
    return f"{STATIC_PREFIX}/{relative}?v={asset.digest}"


@router.get(STATIC_PATH, include_in_schema=False)
def static_file(path: str, request: Request) -> Response:
    """A static file by its canonical path (any other spelling is 404); 304 when the client's copy
    is current, gzip when the client accepts it."""
    asset = load(path)
    if asset is None:
        raise HTTPException(404, f"no static file {path}")
    versioned = path.startswith("vendor/") or request.query_params.get("v") == asset.digest
    headers = {
        "ETag": asset.etag,
        "Cache-Control": IMMUTABLE if versioned else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
