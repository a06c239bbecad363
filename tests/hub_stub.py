"""A fake Hugging Face Hub behind an in-process mocked HTTP transport (no socket is opened).

It answers the calls huggingface_hub makes to create a repo and commit files (validate-yaml, preupload,
commit) and records what was committed, so tests run the library's real upload code end to end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
from contextlib import contextmanager

import httpx2
from huggingface_hub import constants, set_client_factory


class FakeHub:
    SHA = "1" * 40

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append((request.method, path))
        if path == "/api/repos/create":
            body = json.loads(request.content)
            repo_id = (
                f"{body.get('organization') or 'user'}/{body['name']}" if "/" not in body["name"] else body["name"]
            )
            self.repos[repo_id] = body
            self.files.setdefault(repo_id, {})
            return httpx2.Response(
                200,
                json={
                    "url": f"https://huggingface.co/datasets/{repo_id}"
                    if body.get("type") == "dataset"
                    else f"https://huggingface.co/{repo_id}",
                    "name": repo_id,
                },
            )
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        match = re.match(r"^/api/(models|datasets|spaces)/(.+?)/preupload/(.+)$", path)
        if match:
            files = json.loads(request.content)["files"]
            return httpx2.Response(
                200,
                json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
            )
        match = re.match(r"^/api/(models|datasets|spaces)/(.+?)/commit/(.+)$", path)
        if match:
            repo_id = match.group(2)
            for line in request.content.decode().splitlines():
                entry = json.loads(line)
                if entry["key"] == "file":
                    value = entry["value"]
                    self.files.setdefault(repo_id, {})[value["path"]] = base64.b64decode(value["content"])
            return httpx2.Response(
                200, json={"commitUrl": f"https://huggingface.co/{repo_id}/commit/{'1' * 40}", "commitOid": "1" * 40}
            )
        return self._serve_files(request, path)

    # -- reading -----------------------------------------------------------------------------------------------

    def _entries(self, repo_id: str, prefix: str = "", recursive: bool = True) -> list[dict]:
        files = self.files.get(repo_id, {})
        prefix = prefix.strip("/")
        entries, directories = [], set()
        for name, content in sorted(files.items()):
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 :] if prefix else name
            if not recursive and "/" in rest:
                directories.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                continue
            entries.append(
                {"type": "file", "path": name, "size": len(content), "oid": hashlib.sha1(content).hexdigest()}
            )
        entries += [{"type": "directory", "path": d, "oid": "0" * 40, "size": 0} for d in sorted(directories)]
        return entries

    def _serve_files(self, request: httpx2.Request, path: str) -> httpx2.Response:
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)(?:/revision/([^/]+))?$", path)
        if match and match.group(2) in self.files:
            repo_id = match.group(2)
            siblings = [{"rfilename": e["path"], "size": e["size"]} for e in self._entries(repo_id)]
            return httpx2.Response(
                200, json={"id": repo_id, "sha": self.SHA, "siblings": siblings, "private": False, "tags": []}
            )
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/tree/([^/]+)/?(.*)$", path)
        if match and match.group(2) in self.files:
            recursive = request.url.params.get("recursive", "false").lower() == "true"
            return httpx2.Response(200, json=self._entries(match.group(2), match.group(4), recursive))
        match = re.match(r"^/api/(models|datasets)/([^/]+/[^/]+)/paths-info/([^/]+)$", path)
        if match and match.group(2) in self.files:
            form = dict(item.split("=", 1) for item in request.content.decode().split("&") if "=" in item)
            wanted = {urllib.parse.unquote_plus(v) for k, v in form.items() if k.startswith("paths")}
            return httpx2.Response(200, json=[e for e in self._entries(match.group(2)) if e["path"] in wanted])
        match = re.match(r"^/(?:datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if match and match.group(1) in self.files:
            content = self.files[match.group(1)].get(urllib.parse.unquote(match.group(3)))
            if content is None:
                return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"})
            headers = {
                "X-Repo-Commit": self.SHA,
                "ETag": f'"{hashlib.sha1(content).hexdigest()}"',
                "Content-Length": str(len(content)),
            }
            return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else content)
        return httpx2.Response(
            404,
            headers={"X-Error-Code": "RepoNotFound"},
            json={"error": f"fake hub does not serve {request.method} {path}"},
        )


@contextmanager
def fake_hub(monkeypatch, cache_dir):
    """Route huggingface_hub's HTTP client to a :class:`FakeHub` for the duration of the block, with a private
    Hub cache under ``cache_dir`` (downloads never reach the user's cache)."""
    hub = FakeHub()
    import datasets

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handle)))
    try:
        yield hub
    finally:
        set_client_factory(httpx2.Client)
