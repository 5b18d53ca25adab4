"""A loopback stand-in for the Hub API routes Browse uses, answering from fixture JSON and files.

Bound to 127.0.0.1 on a free port; it serves at most MAX_REQUESTS and shuts itself down after LIFETIME_S,
so a forgotten server cannot outlive its test. The real huggingface_hub and datasets clients talk to it.
"""

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"
LIFETIME_S = 120
MAX_REQUESTS = 2000
TOKEN = "hf_browse_test_token_5d1e"
SHA = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Repo:
    kind: str  # "model" or "dataset"
    info: dict
    files: dict[str, bytes] = field(default_factory=dict)
    gated: bool = False
    private: bool = False


class FakeHub:
    def __init__(self, token: str = "") -> None:
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path?query, authorization)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(LIFETIME_S, self.stop)
        self._timer.daemon = True

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo: Repo) -> None:
        self.repos[(repo.kind, repo.info["id"])] = repo

    def load_fixtures(self) -> "FakeHub":
        """Repos from fixtures/hub.json, with files from fixtures/repos/<kind>s/<owner>--<name>/."""
        spec = json.loads((FIXTURES / "hub.json").read_text())
        for kind in ("model", "dataset"):
            for info in spec[f"{kind}s"]:
                folder = FIXTURES / "repos" / f"{kind}s" / info["id"].replace("/", "--")
                files = (
                    {
                        p.relative_to(folder).as_posix(): p.read_bytes()
                        for p in sorted(folder.rglob("*"))
                        if p.is_file()
                    }
                    if folder.is_dir()
                    else {}
                )
                self.add(
                    Repo(kind, info, files, gated=bool(info.get("gated")), private=bool(info.get("private")))
                )
        return self

    def start(self) -> "FakeHub":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._route(head=False)

        def _route(self, head: bool) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Authorization", "")))
            if len(hub.requests) > MAX_REQUESTS:
                return self._send(503, {"error": "fake hub request limit reached"})
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts[:1] == ["api"] and len(parts) >= 2 and parts[1] in ("models", "datasets"):
                kind = parts[1][:-1]
                if len(parts) == 2:
                    return self._send(200, _search(hub, kind, query))
                return self._api_repo(kind, parts[2:], query)
            kind = "dataset" if parts[:1] == ["datasets"] else "model"
            parts = parts[1:] if kind == "dataset" else parts
            if len(parts) >= 4 and parts[2] == "resolve":
                return self._file(kind, "/".join(parts[:2]), "/".join(parts[4:]), head)
            return self._send(404, {"error": "no such route"}, code="RepoNotFound")

        def _api_repo(self, kind: str, rest: list[str], query: dict) -> None:
            repo = self._repo(kind, "/".join(rest[:2]), need_files=False)
            if repo is None:
                return None
            sub = rest[2:]
            if not sub or sub[0] == "revision":
                return self._send(200, _info(repo))
            if sub[0] == "tree":
                prefix = "/".join(sub[2:])
                recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
                return self._send(200, _tree(repo, prefix, recursive))
            if sub[0] == "paths-info":
                return self._send(200, _tree(repo, "", True))
            return self._send(404, {"error": "no such route"}, code="EntryNotFound")

        def _repo(self, kind: str, repo_id: str, need_files: bool) -> Repo | None:
            repo = hub.repos.get((kind, repo_id))
            authorized = hub.token and self.headers.get("Authorization") == f"Bearer {hub.token}"
            if repo is None or (repo.private and not authorized):
                self._send(401, {"error": "Repository Not Found"}, code="RepoNotFound")
                return None
            if need_files and repo.gated and not authorized:
                self._send(401, {"error": "Access to this repo is restricted"}, code="GatedRepo")
                return None
            return repo

        def _file(self, kind: str, repo_id: str, path: str, head: bool) -> None:
            repo = self._repo(kind, repo_id, need_files=True)
            if repo is None:
                return None
            body = repo.files.get(path)
            if body is None:
                return self._send(404, {"error": "Entry not found"}, code="EntryNotFound")
            etag = hashlib.sha256(body).hexdigest()
            headers = {"ETag": f'"{etag}"', "X-Repo-Commit": SHA, "Content-Type": "application/octet-stream"}
            self._raw(200, b"" if head else body, headers, length=len(body))

        def _send(self, status: int, payload, code: str = "") -> None:
            headers = {"Content-Type": "application/json", "X-Repo-Commit": SHA}
            if code:
                headers["X-Error-Code"] = code
            body = json.dumps(payload).encode()
            self._raw(status, b"" if self.command == "HEAD" else body, headers, length=len(body))

        def _raw(self, status: int, body: bytes, headers: dict, length: int) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


def _search(hub: FakeHub, kind: str, query: dict) -> list[dict]:
    text = (query.get("search") or [""])[0].lower()
    filters = query.get("filter", [])
    task = (query.get("pipeline_tag") or query.get("task_categories") or [""])[0]
    rows = [r.info for (k, _), r in hub.repos.items() if k == kind and not r.private]
    rows = [r for r in rows if text in r["id"].lower()]
    rows = [r for r in rows if all(f == r.get("library_name") or f in r.get("tags", []) for f in filters)]
    if task:
        rows = [
            r for r in rows if task == r.get("pipeline_tag") or f"task_categories:{task}" in r.get("tags", [])
        ]
    sort = (query.get("sort") or ["downloads"])[0]
    # Counts and ISO dates both order correctly as zero-padded text.
    rows = sorted(rows, key=lambda r: str(r.get(sort) or 0).zfill(24), reverse=True)
    limit = int((query.get("limit") or ["1000"])[0])
    keys = (
        "id",
        "likes",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
        "lastModified",
        "private",
    )
    return [{k: r[k] for k in keys if k in r} for r in rows[:limit]]


def _info(repo: Repo) -> dict:
    info = dict(repo.info)
    info.setdefault("sha", SHA)
    info.setdefault("lastModified", "2025-01-01T00:00:00.000Z")
    info["gated"] = info.get("gated", False)
    info["private"] = repo.private
    info["siblings"] = [
        {"rfilename": name, "size": len(body), "blobId": hashlib.sha1(body).hexdigest()}
        for name, body in sorted(repo.files.items())
    ]
    return info


def _tree(repo: Repo, prefix: str, recursive: bool) -> list[dict]:
    entries, folders = [], set()
    for name, body in sorted(repo.files.items()):
        if prefix and not name.startswith(prefix.rstrip("/") + "/"):
            continue
        rest = name[len(prefix.rstrip("/") + "/") :] if prefix else name
        if "/" in rest and not recursive:
            folders.add((prefix.rstrip("/") + "/" if prefix else "") + rest.split("/")[0])
            continue
        entries.append(
            {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
        )
    return [{"type": "directory", "path": f, "oid": SHA} for f in sorted(folders)] + entries
