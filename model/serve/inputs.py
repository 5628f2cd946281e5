"""What a request may hand the server: an image it can decode without running out of
memory, and a URL that does not point inside the machine's own network."""

from __future__ import annotations

import io
import ipaddress
import socket
import struct
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from catalog.images import TooManyPixels, open_bounded

FORMATS = {"PNG", "JPEG", "WEBP"}
# A 1280 px wide page at a device pixel ratio of 2 down to 30,000 CSS px is 77 M pixels.
MAX_PIXELS = 100_000_000


class BadInput(ValueError):
    """A request the server refuses; `status` is its HTTP code, the message one line."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB pixels of a PNG, JPEG or WebP; the size is read from the header and checked
    before a single pixel is decompressed, so a small file cannot claim gigabytes."""
    return pixels(open_image(data, max_pixels))


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The opened image, only its header read: refused here when it is not a PNG, JPEG or
    WebP or claims more than `max_pixels`, before any pixel is decompressed."""
    if not data:
        raise BadInput("the upload is empty: send a screenshot (PNG, JPEG or WebP)")
    try:
        return open_bounded(io.BytesIO(data), max_pixels, sorted(FORMATS))
    except TooManyPixels as big:
        raise BadInput(f"the image claims {big.width}x{big.height} pixels, more than the "
                       f"{max_pixels:,} this server decodes: send a smaller screenshot",
                       413) from None
    except UnidentifiedImageError:
        fmt = _format_of(data)
        if fmt:
            raise BadInput(f"{fmt} images are not read here: send a PNG, JPEG or WebP "
                           "screenshot", 415) from None
        raise BadInput("the upload is not an image: send a screenshot (PNG, JPEG or "
                       "WebP)") from None
    except (OSError, SyntaxError, ValueError):
        raise BadInput("the upload is not an image: send a screenshot (PNG, JPEG or "
                       "WebP)") from None


def pixels(im: Image.Image) -> np.ndarray:
    """RGB pixels of an image from `open_image` (which it closes)."""
    with im:
        try:
            im.load()
            return np.asarray(im.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise BadInput(f"the image is damaged or truncated ({type(exc).__name__}): "
                           "send the whole file") from None


def _format_of(data: bytes) -> str | None:
    """The format Pillow would read the bytes as, from their first bytes only."""
    Image.init()
    for fmt, (_, accept) in Image.OPEN.items():
        try:  # as Image.open does: a prefix too short for a format is not that format
            known = accept(data[:16]) if accept else False
        except (IndexError, TypeError, struct.error):
            continue
        if known and not isinstance(known, str):
            return fmt
    return None


def _private(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_url(url: str, allow_hosts: frozenset[str] = frozenset(),
              resolve=socket.getaddrinfo) -> str:
    """The URL back when it is http(s) to a public address (or a host on the allow list)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadInput(f"only http and https URLs are captured, not {parts.scheme or url!r}")
    host = parts.hostname
    if not host:
        raise BadInput(f"{url!r} names no host: give a URL like https://example.org/")
    if host.lower() in allow_hosts:
        return url
    try:
        infos = resolve(host, parts.port or (443 if parts.scheme == "https" else 80),
                        proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise BadInput(f"the host {host} does not resolve: check the URL") from None
    for info in infos:
        if _private(info[4][0]):
            raise BadInput(f"{host} resolves to the private address {info[4][0]}: only public "
                           "hosts are captured (start the server with --allow-host "
                           f"{host} to allow it)", 403)
    return url
