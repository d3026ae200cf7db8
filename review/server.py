"""The review page's HTTP server: the standard library's ThreadingHTTPServer, no framework.

    GET  /                      the page (review/static/index.html), the night at a glance
    GET  /static/<name>         its script and style sheet (only the files shipped there)
    GET  /api/night             counts per status and reason, drift levels, last nights
    GET  /api/next?reviewer=R   the next unanswered input (held for R for two minutes)
    GET  /api/original/<index>  the input's original bytes, as scored
    GET  /api/seen/<index>      the 28x28 image the model saw, as PNG
    POST /api/answer            {"index": I, "answer": "0".."9"|"not_a_digit"|"skip", "reviewer": R}
    POST /api/undo              {"reviewer": R}

Only the inputs of the partition are served, by their index in the queue: no part of a
request becomes a path. Bodies over MAX_BODY bytes, malformed JSON, unknown answers or
indices, other methods and other paths are refused with 413, 400, 404 or 405 and a line
saying why. Nothing comes from the internet: the page's files ship with the package.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from common import files
from review import answers as answers_store
from review.queue import Night

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_FILES = {"index.html", "app.js", "style.css"}
MAX_BODY = 4096
HOLD_SECONDS = 120.0
IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "bmp": "image/bmp"}


class Review:
    """The state the handlers share: the night, the answers, who holds what."""

    def __init__(self, night: Night, answers: answers_store.Answers):
        self.night, self.answers = night, answers
        self.lock = threading.Lock()
        self.held: dict[int, tuple[str, float]] = {}  # index -> (reviewer, until)

    def next_item(self, reviewer: str):
        """(the next input no one answered and no one else has on screen, or None; the
        progress), from one reading of the answers."""
        live = self.answers.live()
        done = {_identity(a) for a in live}
        now = time.monotonic()
        with self.lock:
            for item in self.night.items:
                holder, until = self.held.get(item.index, ("", 0.0))
                if _identity(item) in done:
                    continue
                if holder and holder != reviewer and until > now:
                    continue  # another reviewer has it on screen
                self.held[item.index] = (reviewer, now + HOLD_SECONDS)
                return item, self.progress(live)
        return None, self.progress(live)

    def progress(self, live=None) -> dict:
        live = self.answers.live() if live is None else live
        done = {_identity(a) for a in live}
        answered = sum(_identity(item) in done for item in self.night.items)
        recent = [a for a in live if a.at > time.time() - 300]
        rate = len(recent) / 5.0 if recent else 0.0
        return {"answered": answered, "total": len(self.night.items), "per_minute": round(rate, 1)}


def _identity(input_or_answer) -> str:
    """What makes two answers about the same input: its SHA-256 (its key for a record
    without one)."""
    return input_or_answer.input_sha256 or input_or_answer.key


def serve(review: Review, host: str, port: int) -> ThreadingHTTPServer:
    """A server listening on host:port (call serve_forever); the normalisation is traced
    first, so the first image does not keep a person waiting."""
    _seen(_BLANK_PNG)
    handler = type("Handler", (Handler,), {"review": review})
    return ThreadingHTTPServer((host, port), handler)


class Handler(BaseHTTPRequestHandler):
    review: Review
    server_version = "digits-review"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # one line per request would drown the URL the job printed

    # --- routing ---

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/":
            return self._static("index.html")
        if match := re.fullmatch(r"/static/([a-z]+\.(?:html|js|css))", url.path):
            return self._static(match.group(1))
        if url.path == "/api/night":
            return self._json(self._night())
        if url.path == "/api/next":
            return self._next(query.get("reviewer", [""])[0])
        if match := re.fullmatch(r"/api/(original|seen)/(\d{1,9})", url.path):
            return self._image(match.group(1), int(match.group(2)))
        return self._error(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path not in ("/api/answer", "/api/undo"):
            return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")
        body = self._body()
        if body is None:
            return None
        reviewer = body.get("reviewer")
        if not isinstance(reviewer, str) or not re.fullmatch(r"[\w.@-]{1,64}", reviewer):
            return self._error(HTTPStatus.BAD_REQUEST, "reviewer: 1-64 letters, digits or ._@-")
        if url.path == "/api/undo":
            undone = self.review.answers.undo(reviewer)
            return self._json({"undone": undone and undone.__dict__, **self.review.progress()})
        return self._answer(body, reviewer)

    def do_PUT(self):  # noqa: N802
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST")

    do_DELETE = do_PATCH = do_PUT  # noqa: N815

    # --- endpoints ---

    def _night(self) -> dict:
        night = self.review.night
        summary = night.summary
        return {
            "partition": night.partition,
            "date": night.date,
            "inputs": summary.get("inputs"),
            "statuses": summary.get("statuses", {}),
            "reasons": summary.get("reasons", {}),
            "failed": summary.get("failed", 0),
            "drift": {
                "alarm": night.drift.get("alarm", False),
                "breaches": night.drift.get("breaches", []),
                "levels": _levels(night.drift),
            },
            "history": list(night.history),
            "progress": self.review.progress(),
        }

    def _next(self, reviewer: str):
        item, progress = self.review.next_item(reviewer)
        if item is None:
            return self._json({"item": None, **progress})
        shown = {k: v for k, v in item.__dict__.items() if k != "key"}
        shown["name"] = item.key.rsplit("/", 1)[-1]
        return self._json({"item": shown, **progress})

    def _answer(self, body: dict, reviewer: str):
        index, answer = body.get("index"), body.get("answer")
        items = self.review.night.items
        if not isinstance(index, int) or not 0 <= index < len(items):
            return self._error(HTTPStatus.BAD_REQUEST, f"index {index!r}: not in this queue")
        if answer not in answers_store.ANSWERS:
            choices = ", ".join(answers_store.ANSWERS)
            return self._error(HTTPStatus.BAD_REQUEST, f"answer {answer!r}: one of {choices}")
        item = items[index]
        original, ext = None, "png"
        if answer != answers_store.SKIP:
            original, ext = _original(item)
        given = self.review.answers.give(item, answer, reviewer, original, ext)
        return self._json({"answered": given.__dict__, **self.review.progress()})

    def _image(self, kind: str, index: int):
        items = self.review.night.items
        if index >= len(items):
            return self._error(HTTPStatus.NOT_FOUND, f"no input {index} in this queue")
        data, ext = _original(items[index])
        if data is None:
            return self._error(
                HTTPStatus.NOT_FOUND, "no image file for this input (a record, or changed since)"
            )
        if kind == "seen":
            data, ext = _seen(data), "png"
        self._send(HTTPStatus.OK, IMAGE_TYPES.get(ext, "application/octet-stream"), data)

    # --- plumbing ---

    def _static(self, name: str):
        if name not in STATIC_FILES:
            return self._error(HTTPStatus.NOT_FOUND, f"no such file: {name}")
        with open(os.path.join(STATIC, name), "rb") as handle:
            data = handle.read()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, f"{kind}; charset=utf-8", data)

    def _body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "a POST needs Content-Length")
            return None
        if length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
            return None
        try:
            body = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return None
        return body

    def _json(self, payload: dict):
        self._send(HTTPStatus.OK, "application/json", json.dumps(payload).encode())

    def _error(self, status: HTTPStatus, message: str):
        self._send(status, "application/json", json.dumps({"error": message}).encode())

    def _send(self, status: HTTPStatus, kind: str, data: bytes):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)


def _original(item) -> tuple[bytes | None, str]:
    """The input's bytes as scored and its file type; (None, "") for a record, or for a
    file whose bytes are no longer the ones scored (their SHA-256 must match)."""
    try:
        data = files.read_bytes(item.key)
    except (OSError, ValueError):
        return None, ""
    if hashlib.sha256(data).hexdigest() != item.input_sha256:
        return None, ""
    from PIL import Image

    try:
        kind = (Image.open(io.BytesIO(data)).format or "png").lower()
    except Exception:  # noqa: BLE001 - the scorer read it; the page just shows bytes
        kind = "png"
    return data, "jpg" if kind == "jpeg" else kind


def _blank_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (40, 40), 255).save(buffer, "PNG")
    return buffer.getvalue()


def _seen(data: bytes) -> bytes:
    """The 28x28 pixels the model saw (model.images), as PNG."""
    from PIL import Image

    from model import images

    pixels = images.to_mnist_pixels(images.decode(data))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _levels(drift: dict) -> list[dict]:
    """Each comparison of drift.json: histogram, against what, its level (ok, watch, act)."""
    return [
        {"histogram": c.get("histogram"), "against": c.get("against"), "level": c.get("level")}
        for c in drift.get("comparisons", [])
    ]


_BLANK_PNG = _blank_png()
