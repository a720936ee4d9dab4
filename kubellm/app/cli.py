"""`kubellm`: the command-line client. `kubellm login` trades a username and password for a token and
writes a kubeconfig user that kubectl then uses."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict):
            return data
    return {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [], "preferences": {}}


def _upsert(items: list[dict[str, Any]], name: str, key: str, value: dict[str, Any]) -> None:
    for item in items:
        if item.get("name") == name:
            item[key] = value
            return
    items.append({"name": name, key: value})


def write_token_kubeconfig(path: Path, server: str, ca: Path | None, user: str, token: str, context: str) -> None:
    cfg = _load(path)
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        import base64

        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    _upsert(cfg.setdefault("clusters", []), context, "cluster", cluster)
    _upsert(cfg.setdefault("users", []), f"{context}-{user}", "user", {"token": token})
    _upsert(cfg.setdefault("contexts", []), context, "context", {"cluster": context, "user": f"{context}-{user}"})
    cfg["current-context"] = context
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)


def login(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    ctx = ssl.create_default_context(cafile=args.certificate_authority) if args.certificate_authority else None
    req = urllib.request.Request(args.server.rstrip("/") + "/login", method="POST",
                                 data=json.dumps({"username": args.username, "password": password}).encode(),
                                 headers={"Content-Type": "application/json", "User-Agent": "kubellm-cli"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", exc.reason)
        except ValueError:
            message = exc.reason
        print(f"error: login failed: {message}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"error: cannot reach {args.server}: {exc.reason}", file=sys.stderr)
        return 1
    token = body["status"]["token"]
    path = Path(args.kubeconfig or os.environ.get("KUBECONFIG", "") or Path.home() / ".kube" / "config")
    ca = Path(args.certificate_authority) if args.certificate_authority else None
    write_token_kubeconfig(path, args.server, ca, args.username, token, args.context)
    print(f"Logged in as {args.username}; token valid until {body['status']['expirationTimestamp']} "
          f"(kubeconfig {path}, context {args.context}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kubellm", description="The KubeLLM command-line client.")
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("login", help="log in with a username and password; writes a kubeconfig user")
    lp.add_argument("--server", required=True, help="the API server URL, e.g. https://127.0.0.1:6443")
    lp.add_argument("--username", required=True)
    lp.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    lp.add_argument("--certificate-authority", default="", help="CA bundle of the server's certificate")
    lp.add_argument("--kubeconfig", default="", help="kubeconfig to write (default: $KUBECONFIG or ~/.kube/config)")
    lp.add_argument("--context", default="kubellm")
    args = p.parse_args(argv)
    return login(args)
