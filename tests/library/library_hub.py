"""A loopback server answering the Hub routes huggingface_hub uses to list and download files.

Routes: GET /api/models/<repo>/tree/<rev>[/<path>] (list_repo_files) and HEAD/GET
/<repo>/resolve/<rev>/<path> (hf_hub_download, with Range for safetensors headers). A repo marked private
answers only to `Authorization: Bearer <token>`. Every request is recorded with its Authorization and Range headers.
"""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "feedc0de" * 5


class LoopbackHub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, dict[str, bytes]] = {}
        self.private: set[str] = set()
        self.requests: list[tuple[str, str, str, str]] = []  # method, path, authorization, range
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo: str, files: dict[str, bytes], *, private: bool = False) -> None:
        self.repos[repo] = files
        if private:
            self.private.add(repo)

    def start(self) -> "LoopbackHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fetched(self, repo: str) -> list[str]:
        """Files of `repo` whose bytes were requested (GET on resolve)."""
        prefix = f"/{repo}/resolve/"
        return [path[len(prefix):].split("/", 1)[1] for method, path, _, _ in self.requests
                if method == "GET" and path.startswith(prefix)]


def _handler(hub: LoopbackHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self._route()

        def do_GET(self) -> None:
            self._route()

        def _route(self) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Authorization", ""),
                                 self.headers.get("Range", "")))
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
                return self._tree("/".join(parts[2:4]), "/".join(parts[6:]))
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._file("/".join(parts[:2]), "/".join(parts[4:]))
            return self._send(404, b'{"error": "no such route"}', {"X-Error-Code": "RepoNotFound"})

        def _repo(self, repo: str) -> dict[str, bytes] | None:
            allowed = repo not in hub.private or self.headers.get("Authorization") == f"Bearer {hub.token}"
            if repo not in hub.repos or not allowed:
                self._send(401, b'{"error": "Repository Not Found"}', {"X-Error-Code": "RepoNotFound"})
                return None
            return hub.repos[repo]

        def _tree(self, repo: str, prefix: str) -> None:
            files = self._repo(repo)
            if files is not None:
                listing = [{"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                           for name, body in sorted(files.items()) if name.startswith(prefix)]
                self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"})

        def _file(self, repo: str, name: str) -> None:
            files = self._repo(repo)
            if files is None:
                return
            if name not in files:
                return self._send(404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"})
            body, status = files[name], 200
            headers = {"ETag": f'"{hashlib.sha256(body).hexdigest()}"', "X-Repo-Commit": COMMIT,
                       "Content-Type": "application/octet-stream"}
            wanted = self.headers.get("Range", "")
            if wanted.startswith("bytes="):
                start, _, end = wanted[len("bytes="):].partition("-")
                first, last = int(start), min(int(end or len(body) - 1), len(body) - 1)
                headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
                body, status = body[first:last + 1], 206
            self._send(status, body, headers)

        def _send(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            headers.setdefault("X-Repo-Commit", COMMIT)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler
