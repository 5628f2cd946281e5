"""Why a capture is not ok, said so that a person can act on it: the browser's network
error with its meaning, the HTTP status with its reason, the content type."""

from __future__ import annotations

import re
from http import HTTPStatus

from catalog.records import PageRecord

# The browser's network errors a new user meets most, in plain words.
NET_ERRORS = {
    "NAME_NOT_RESOLVED": "the host name does not resolve",
    "CONNECTION_REFUSED": "nothing answers on that port",
    "CONNECTION_TIMED_OUT": "the server did not answer",
    "CONNECTION_RESET": "the server closed the connection",
    "ADDRESS_UNREACHABLE": "no route to the address",
    "INTERNET_DISCONNECTED": "no network",
    "EMPTY_RESPONSE": "the server sent nothing",
    "TOO_MANY_REDIRECTS": "the redirects go round in a loop",
    "SSL_PROTOCOL_ERROR": "the TLS handshake failed",
    "CERT_AUTHORITY_INVALID": "the certificate is not trusted",
    "CERT_COMMON_NAME_INVALID": "the certificate is for another host",
    "CERT_DATE_INVALID": "the certificate has expired or is not valid yet",
}
_NET_ERROR = re.compile(r"net::ERR_([A-Z_]+)")


def cause_of(page: PageRecord) -> str:
    """Why a capture is not ok, in the words a person looks up: the browser's net::ERR_...,
    the HTTP status and its reason, the content type."""
    if page.status == "ok":
        return ""
    http = ""
    if page.http_status:
        try:
            http = f"HTTP {page.http_status} {HTTPStatus(page.http_status).phrase}"
        except ValueError:
            http = f"HTTP {page.http_status}"
    if page.status == "not_html":
        return f"not HTML ({page.content_type or 'no content type'})"
    if page.status == "timeout" and not page.error:
        return "the load did not finish before the timeout; captured as far as it got"
    net = _NET_ERROR.search(page.error)
    if net:  # without the driver's "Message: unknown error: " around it
        plain = NET_ERRORS.get(net[1])
        return net[0] + (f" ({plain})" if plain else "")
    return page.error or http or page.status
