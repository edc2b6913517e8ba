"""A Hugging Face hub on 127.0.0.1 serving a local directory in the hub layout (`ORG/NAME/...files`): the model
listing and the file downloads that huggingface_hub's `snapshot_download` asks for, nothing more."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.downloads: Counter[str] = Counter()
        """Files sent (GET), by `repo/path`."""
        self.url = ""

    def files_of(self, repo_id: str) -> list[str]:
        base = self.root / repo_id
        return sorted(str(path.relative_to(base)) for path in base.rglob("*") if path.is_file())


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def _answer(self, body: bool) -> None:
            parts = unquote(urlsplit(self.path).path).strip("/").split("/")
            if parts[:2] == ["api", "models"]:
                repo_id = "/".join(parts[2:4])
                if not (hub.root / repo_id).is_dir():
                    return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
                if len(parts) > 4 and parts[4] == "tree":
                    tree = [_entry(hub.root / repo_id, name) for name in hub.files_of(repo_id)]
                    return self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, body)
                listing = {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": COMMIT,
                    "private": False,
                    "siblings": [{"rfilename": name} for name in hub.files_of(repo_id)],
                }
                return self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"}, body)
            if len(parts) > 4 and parts[2] == "resolve":
                repo_id, name = "/".join(parts[:2]), "/".join(parts[4:])
                path = hub.root / repo_id / name
                if not path.is_file():
                    return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, body)
                data = path.read_bytes()
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
                if body:
                    hub.downloads[f"{repo_id}/{name}"] += 1
                return self._send(200, data, headers, body)
            self._send(404, b"", {}, body)

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool = True) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def _entry(base: Path, name: str) -> dict[str, object]:
    data = (base / name).read_bytes()
    return {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}


@contextmanager
def serving(root: Path) -> Iterator[FakeHub]:
    hub = FakeHub(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
