"""``iotpipe serve``: the retrieval handler behind a local HTTP server, plus its page and spec.

Each API request (``GET /devices/{device_id}/readings``, ``/datasets``, ``/devices``,
``/datasets/{dataset}/categories``) becomes the API Gateway HTTP API (payload v2) event AWS
would send, and goes to the same `iotpipe.handlers.retrieve.handler`. ``/`` serves the chart
page and ``/openapi.json`` the OpenAPI spec. One request at a time, on 127.0.0.1 by default:
a development server, not a production one.
"""

from __future__ import annotations

import json
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from iotpipe.local.stack import LocalContext


def http_api_event(path: str, query: str, source_ip: str = "127.0.0.1") -> dict[str, Any] | None:
    """Build the HTTP API v2 event for an API request (None when the path is not one).

    Parameters
    ----------
    path
        The URL path, still percent-encoded.
    query
        The raw query string.
    source_ip
        The client address.

    Returns
    -------
    dict or None
        The event API Gateway would pass to the function.
    """
    from iotpipe.handlers.retrieve import PATHS

    found = next(((m, key) for pattern, key in PATHS if (m := pattern.match(path))), None)
    if found is None:
        return None
    match, route_key = found
    # Like API Gateway: repeated parameters are joined with commas.
    params = {k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()}
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"accept": "application/json"},
        "queryStringParameters": params or None,
        "pathParameters": {k: unquote(v) for k, v in match.groupdict().items()} or None,
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def _asset(name: str) -> bytes:
    return resources.files("iotpipe.web").joinpath(name).read_bytes()


class _Requests(BaseHTTPRequestHandler):
    server_version = "iotpipe-serve"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _asset("index.html"), "text/html; charset=utf-8")
        elif url.path == "/openapi.json":
            spec = yaml.safe_load(_asset("openapi.yaml"))
            self._send(HTTPStatus.OK, json.dumps(spec).encode(), "application/json")
        elif url.path == "/openapi.yaml":
            self._send(HTTPStatus.OK, _asset("openapi.yaml"), "application/yaml")
        elif (event := http_api_event(url.path, url.query, self.client_address[0])) is not None:
            from iotpipe.handlers.retrieve import handler

            response = handler(event, LocalContext(function_name="iotpipe-retrieve-local"))
            headers = response.get("headers", {})
            self._send(
                HTTPStatus(response["statusCode"]),
                response["body"].encode(),
                headers.get("content-type", "application/json"),
            )
        else:
            body = json.dumps({"error": "not_found", "path": url.path}).encode()
            self._send(HTTPStatus.NOT_FOUND, body, "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        if self.server.quiet:  # type: ignore[attr-defined]
            return
        super().log_message(format, *args)


class ReadingsServer(HTTPServer):
    """The local server. ``serve_forever`` blocks; `start_in_thread` is for tests and tools."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, quiet: bool = False) -> None:
        super().__init__((host, port), _Requests)
        self.quiet = quiet
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_in_thread(self) -> ReadingsServer:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="iotpipe-serve", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
