"""A fake Hugging Face Hub behind an in-process mocked HTTP transport (no socket is opened).

It answers the calls huggingface_hub, transformers and datasets make to create repos, upload, list and download
files, so tests run the libraries' real Hub code end to end. Where real pushes and loads differ it behaves like
the Hub:

- **Tokens**: every write (create, preupload, LFS batch, commit, branch) needs ``Authorization:
  Bearer …`` and is answered 401 without one; private repos are 401 to anonymous readers. The fixture hides the
  machine's own token (``HF_TOKEN`` and the token file).
- **LFS**: ``*.safetensors``, ``*.parquet`` (and other binary weights/arrays) are preuploaded in ``"lfs"`` mode,
  so the client takes the LFS batch → PUT → verify → ``lfsFile`` commit path that real weights and shards take;
  the PUT is checked against its sha256, and a commit naming an object that was never uploaded is refused.
  Downloads of LFS files carry ``X-Linked-Etag``/``X-Linked-Size`` as on the Hub.
- **Commits and revisions**: every commit gets its own sha; branches can be created and committed to; files are
  served by branch name or commit sha, and an unknown revision is 404 ``RevisionNotFound``.
- **Byte ranges**: ``Range: bytes=a-b`` is answered 206 with ``Content-Range`` (what streaming readers send).

What it does not model: the Xet storage protocol (the fixture sets ``HF_HUB_DISABLE_XET``, so uploads take the
legacy LFS route the client still supports), multipart LFS, pull requests (``create_pr`` is answered 501),
pagination of long listings, redirects to a CDN, gated repos, rate limits, and the Hub's own YAML validation of
cards (``validate-yaml`` accepts anything; tests check the metadata themselves).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2
from huggingface_hub import constants, set_client_factory

LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".pth", ".pt", ".h5", ".npy", ".faissindex")
FAKE_HOST = "https://huggingface.co"


@dataclass
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.content) + self.content).hexdigest()


@dataclass
class Repo:
    repo_type: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commit_messages: list[str] = field(default_factory=list)


def _error(status: int, code: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, headers={"X-Error-Code": code}, json={"error": message})


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        """repo id → the body of its create request (type, private, …)."""
        self.state: dict[str, Repo] = {}
        self.snapshots: dict[str, dict[str, StoredFile]] = {}
        """commit sha → files at that commit."""
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.unauthorized: list[tuple[str, str]] = []
        # Unique across hubs, as on the Hub: fsspec caches HfFileSystem content by commit sha between tests.
        self._shas = (hashlib.sha1(uuid.uuid4().bytes).hexdigest() for _ in itertools.count())

    # -- views for tests -----------------------------------------------------------------------------------------

    @property
    def files(self) -> dict[str, dict[str, bytes]]:
        """repo id → {path: bytes} on ``main``."""
        return {repo_id: {p: f.content for p, f in self.tree(repo_id).items()} for repo_id in self.state}

    def tree(self, repo_id: str, revision: str = "main") -> dict[str, StoredFile]:
        sha = self._resolve_revision(repo_id, revision)
        if sha is None:
            raise KeyError(f"{repo_id} has no revision {revision!r}")
        return self.snapshots[sha]

    def head(self, repo_id: str, branch: str = "main") -> str:
        return self.state[repo_id].branches[branch]

    # -- dispatch ------------------------------------------------------------------------------------------------

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = urllib.parse.unquote(request.url.path)
        self.requests.append((request.method, path))
        authorized = request.headers.get("authorization", "").startswith("Bearer ")
        writes = (
            (r"^/api/repos/create$", self._create_repo),
            (r"^/api/(models|datasets|spaces)/(.+?)/preupload/(.+)$", self._preupload),
            (r"^/(?:datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$", self._lfs_batch),
            (r"^/api/(models|datasets|spaces)/(.+?)/commit/(.+)$", self._commit),
            (r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)/branch/(.+)$", self._create_branch),
        )
        for pattern, handler in writes:
            match = re.match(pattern, path)
            if match:
                if not authorized:
                    self.unauthorized.append((request.method, path))
                    return _error(401, "Unauthorized", "Invalid credentials in Authorization header")
                return handler(request, match)
        match = re.match(r"^/__lfs__/([0-9a-f]{64})(/verify)?$", path)
        if match:  # the upload URL the batch answer handed out is the credential (as a presigned storage URL)
            return self._lfs_store(request, match)
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        return self._serve(request, path, authorized)

    # -- writing -------------------------------------------------------------------------------------------------

    def _create_repo(self, request, _match) -> httpx2.Response:
        body = json.loads(request.content)
        name = body["name"]
        repo_id = name if "/" in name else f"{body.get('organization') or 'user'}/{name}"
        repo_type = body.get("type") or "model"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{FAKE_HOST}/{prefix}{repo_id}"
        if repo_id in self.state:  # the Hub answers 409 with the existing repo's URL
            message = "You already created this repo"
            if self.state[repo_id].repo_type != repo_type:
                message = f"{repo_id} exists as a {self.state[repo_id].repo_type} repo"
            return httpx2.Response(409, headers={"X-Error-Code": "RepoExists"}, json={"error": message, "url": url})
        private = bool(body.get("private")) or body.get("visibility") == "private"
        self.repos[repo_id] = body
        sha = next(self._shas)
        self.snapshots[sha] = {}
        self.state[repo_id] = Repo(repo_type=repo_type, private=private, branches={"main": sha})
        return httpx2.Response(200, json={"url": url, "name": repo_id})

    def _preupload(self, request, match) -> httpx2.Response:
        if match.group(2) not in self.state:
            return _error(404, "RepoNotFound", f"{match.group(2)} does not exist")
        files = json.loads(request.content)["files"]
        answer = [
            {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
             "shouldIgnore": False}
            for f in files
        ]  # fmt: skip
        return httpx2.Response(200, json={"files": answer})

    def _lfs_batch(self, request, match) -> httpx2.Response:
        if match.group(1) not in self.state:
            return _error(404, "RepoNotFound", f"{match.group(1)} does not exist")
        body = json.loads(request.content)
        if "basic" not in body.get("transfers", ["basic"]):
            return _error(400, "BadRequest", "the fake Hub speaks only the basic LFS transfer")
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs_objects:
                href = f"{FAKE_HOST}/__lfs__/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href}, "verify": {"href": href + "/verify"}}
            objects.append(entry)
        return httpx2.Response(200, json={"transfer": "basic", "objects": objects})

    def _lfs_store(self, request, match) -> httpx2.Response:
        oid = match.group(1)
        if match.group(2):  # verify
            if oid not in self.lfs_objects:
                return _error(404, "EntryNotFound", f"LFS object {oid} was never uploaded")
            return httpx2.Response(200, json={})
        content = request.read()
        if hashlib.sha256(content).hexdigest() != oid:
            return _error(400, "BadRequest", "uploaded bytes do not match the announced sha256")
        self.lfs_objects[oid] = content
        return httpx2.Response(200)

    def _commit(self, request, match) -> httpx2.Response:
        repo_id, revision = match.group(2), match.group(3)
        if repo_id not in self.state:
            return _error(404, "RepoNotFound", f"{repo_id} does not exist")
        if request.url.params.get("create_pr") in ("1", "true", "True"):
            return _error(501, "NotImplemented", "the fake Hub does not model pull requests")
        repo = self.state[repo_id]
        if revision not in repo.branches:
            return _error(404, "RevisionNotFound", f"branch {revision!r} does not exist in {repo_id}")
        files = dict(self.snapshots[repo.branches[revision]])
        summary = ""
        for line in request.content.decode().splitlines():
            entry = json.loads(line)
            key, value = entry["key"], entry["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.lfs_objects.get(value["oid"])
                if content is None or len(content) != value["size"]:
                    return _error(422, "BadRequest", f"{value['path']}: LFS object {value['oid']} was not uploaded")
                files[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            else:
                return _error(400, "BadRequest", f"the fake Hub does not model commit entries of kind {key!r}")
        sha = next(self._shas)
        self.snapshots[sha] = files
        repo.branches[revision] = sha
        repo.commit_messages.append(summary)
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return httpx2.Response(200, json={"commitUrl": f"{FAKE_HOST}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha})

    def _create_branch(self, request, match) -> httpx2.Response:
        repo_id, branch = match.group(2), match.group(3)
        if repo_id not in self.state:
            return _error(404, "RepoNotFound", f"{repo_id} does not exist")
        repo = self.state[repo_id]
        if branch in repo.branches:
            return _error(409, "BranchExists", f"branch {branch!r} already exists")
        body = json.loads(request.content or b"{}")
        start = self._resolve_revision(repo_id, body.get("startingPoint") or "main")
        if start is None:
            return _error(404, "RevisionNotFound", "unknown starting point")
        repo.branches[branch] = start
        return httpx2.Response(200, json={})

    # -- reading -------------------------------------------------------------------------------------------------

    def _resolve_revision(self, repo_id: str, revision: str) -> str | None:
        repo = self.state.get(repo_id)
        if repo is None:
            return None
        if revision in repo.branches:
            return repo.branches[revision]
        return revision if revision in self.snapshots and re.fullmatch(r"[0-9a-f]{40}", revision) else None

    def _entries(self, files: dict[str, StoredFile], prefix: str = "", recursive: bool = True) -> list[dict]:
        prefix = prefix.strip("/")
        entries, directories = [], set()
        for name, stored in sorted(files.items()):
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 :] if prefix else name
            if not recursive and "/" in rest:
                directories.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                continue
            entry = {"type": "file", "path": name, "size": len(stored.content), "oid": stored.git_oid}
            if stored.lfs:
                entry["lfs"] = {"oid": stored.sha256, "size": len(stored.content), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(directories)]
        return entries

    def _readable(self, repo_id: str, revision: str, authorized: bool):
        """(files, sha) or an error response."""
        repo = self.state.get(repo_id)
        if repo is None or (repo.private and not authorized):
            status = 401 if repo is not None else 404
            return _error(status, "RepoNotFound", f"Repository Not Found for url: {repo_id}")
        sha = self._resolve_revision(repo_id, revision)
        if sha is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return self.snapshots[sha], sha

    def _serve(self, request: httpx2.Request, path: str, authorized: bool) -> httpx2.Response:
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/(.+))?$", path)
        if match:
            found = self._readable(match.group(2), match.group(3) or "main", authorized)
            if isinstance(found, httpx2.Response):
                return found
            files, sha = found
            siblings = [{"rfilename": e["path"], "size": e["size"]} for e in self._entries(files)]
            private = self.state[match.group(2)].private
            return httpx2.Response(
                200, json={"id": match.group(2), "sha": sha, "siblings": siblings, "private": private, "tags": []}
            )
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)/?(.*)$", path)
        if match:
            found = self._readable(match.group(2), match.group(3), authorized)
            if isinstance(found, httpx2.Response):
                return found
            recursive = request.url.params.get("recursive", "false").lower() == "true"
            return httpx2.Response(200, json=self._entries(found[0], match.group(4), recursive))
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/paths-info/([^/]+)$", path)
        if match:
            found = self._readable(match.group(2), match.group(3), authorized)
            if isinstance(found, httpx2.Response):
                return found
            form = urllib.parse.parse_qs(request.content.decode())
            wanted = set(form.get("paths", [])) | {v for k, vs in form.items() if k.startswith("paths") for v in vs}
            return httpx2.Response(200, json=[e for e in self._entries(found[0]) if e["path"] in wanted])
        match = re.match(r"^/(?:datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if match:
            found = self._readable(match.group(1), match.group(2), authorized)
            if isinstance(found, httpx2.Response):
                return found
            files, sha = found
            stored = files.get(match.group(3))
            if stored is None:
                return _error(404, "EntryNotFound", f"{match.group(3)} does not exist at {match.group(2)}")
            return self._file_response(request, stored, sha)
        return _error(404, "RepoNotFound", f"fake hub does not serve {request.method} {path}")

    @staticmethod
    def _file_response(request: httpx2.Request, stored: StoredFile, sha: str) -> httpx2.Response:
        content = stored.content
        etag = f'"{stored.sha256 if stored.lfs else stored.git_oid}"'
        headers = {"X-Repo-Commit": sha, "ETag": etag, "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(len(content))})
        status = 200
        wanted = request.headers.get("range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if match is None or not content:
                return httpx2.Response(416, headers={"Content-Range": f"bytes */{len(content)}"})
            first, last = match.groups()
            if first == "":  # suffix range: the last N bytes
                start, end = max(0, len(content) - int(last)), len(content) - 1
            else:
                start, end = int(first), min(int(last) if last else len(content) - 1, len(content) - 1)
            if start >= len(content) or start > end:
                return httpx2.Response(416, headers={"Content-Range": f"bytes */{len(content)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        headers["Content-Length"] = str(len(content))
        return httpx2.Response(status, headers=headers, content=b"" if request.method == "HEAD" else content)


@contextmanager
def fake_hub(monkeypatch, cache_dir):
    """Route huggingface_hub's HTTP client to a :class:`FakeHub` for the duration of the block, with a private
    Hub cache under ``cache_dir`` (downloads never reach the user's cache) and no ambient token."""
    hub = FakeHub()
    import datasets

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cache_dir) + "-no-token")
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(cache_dir) + "-no-tokens")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handle)))
    try:
        yield hub
    finally:
        set_client_factory(httpx2.Client)
