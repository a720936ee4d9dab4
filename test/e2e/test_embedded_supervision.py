"""The embedded etcd is supervised (issue #12, item 2): killed with SIGKILL it is restarted on the same data and
the server serves again by itself, `/livez` passing throughout; while it cannot come back (its binary gone),
`/readyz` and `/livez` name it as failing, so a supervisor would restart the process; once it can, all is well
again without manual action, and the server stops cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from instances import Instance
from polling import until

from kubellm.registry.storage.etcd.embedded import find_etcd

NAMESPACES = "/api/v1/namespaces"


def etcd_pids(log: Path) -> list[int]:
    """The pids of the embedded etcd children the server started, in order (from its JSON log)."""
    pids = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry: Any = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == "etcd starting":
                pids.append(int(entry["pid"]))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def test_embedded_etcd_is_restarted_and_reported(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "etcd"
    binary.parent.mkdir()
    shutil.copy2(find_etcd(), binary)
    server = Instance.start(tmp_path / "state", "--embedded-etcd-max-failed-restarts", "3",
                            env={"KUBELLM_ETCD_BINARY": str(binary)})
    try:
        assert server.request("POST", NAMESPACES, namespace("before-kill"))[0] == 201
        first = etcd_pids(server.log)[-1]

        # killed: restarted on the same data, the server ready again, never not live
        os.kill(first, signal.SIGKILL)
        until(lambda: len(etcd_pids(server.log)) >= 2, 30, "a new etcd child")
        until(lambda: server.request("GET", "/readyz")[0] == 200, 60, "ready again after the restart")
        assert server.request("GET", "/livez")[0] == 200
        assert server.request("GET", f"{NAMESPACES}/before-kill")[0] == 200
        assert server.request("POST", NAMESPACES, namespace("after-restart"))[0] == 201
        assert "embedded etcd restarted" in server.log.read_text()

        # cannot come back (the binary is gone): named in /readyz and /livez
        second = etcd_pids(server.log)[-1]
        assert second != first and not alive(first)
        binary.rename(binary.with_name("etcd.away"))
        os.kill(second, signal.SIGKILL)

        def failing(endpoint: str) -> str | None:
            code, body = server.request("GET", f"/{endpoint}?verbose")
            return body if code == 500 and "[-]embedded-etcd failed" in body else None

        readyz = until(lambda: failing("readyz"), 30, "/readyz names the embedded etcd")
        livez = until(lambda: failing("livez"), 30, "/livez fails while etcd cannot be restarted")
        assert "livez check failed" in livez and "readyz check failed" in readyz
        code, body = server.request("GET", f"{NAMESPACES}/before-kill")
        assert code in (503, 504), (code, body)  # a Status, not a hang
        until(lambda: server.log.read_text().count("embedded etcd restart failed") >= 2, 30,
              "restarts tried and failed while the binary is gone")
        assert failing("livez") and failing("readyz")

        # the binary is back: the supervisor brings etcd back by itself
        binary.with_name("etcd.away").rename(binary)
        until(lambda: server.request("GET", "/readyz")[0] == 200, 90, "ready again once etcd can start")
        assert server.request("GET", "/livez")[0] == 200
        assert server.request("GET", f"{NAMESPACES}/after-restart")[0] == 200
    finally:
        code = server.stop()
    assert code == 0
    last = etcd_pids(server.log)[-1]
    until(lambda: not alive(last), 10, "the embedded etcd stopped with the server")
    assert "Traceback" not in server.log.read_text()
