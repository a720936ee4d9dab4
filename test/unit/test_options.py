"""Server options: parsed, completed and validated into a frozen config; every problem reported."""

from __future__ import annotations

import os
from pathlib import Path

from kubellm.app.options import Options, available_cores


def test_defaults_make_a_config(tmp_path: Path) -> None:
    opts = Options.parse(["--state-dir", str(tmp_path)]).complete()
    assert opts.validate() == []
    cfg = opts.config()
    assert cfg.secure_port == 6443 and cfg.etcd_servers == () and cfg.login_max_failures == 5
    assert cfg.login_lockout_seconds == 300 and cfg.token_ttl_seconds == 3600 and cfg.oidc is None


def test_every_problem_is_reported() -> None:
    problems = Options.parse([
        "--etcd-servers", "etcd:2379", "--tls-cert-file", "x.crt", "--secure-port", "70000",
        "--oidc-issuer-url", "http://idp", "--login-max-failures", "0", "--token-ttl-seconds", "5",
        "--audit-policy-file", "p.yaml",
    ]).complete().validate()
    assert len(problems) == 7, problems
    assert any("--etcd-servers" in p for p in problems)
    assert any("--tls-cert-file and --tls-private-key-file" in p for p in problems)
    assert any("--oidc-issuer-url must be an https:// URL" in p for p in problems)
    assert any("--audit-policy-file needs --audit-log-path" in p for p in problems)


def test_flags_reach_the_config(tmp_path: Path) -> None:
    cfg = Options.parse(["--state-dir", str(tmp_path), "--login-max-failures", "3", "--login-lockout-seconds", "60",
                         "--oidc-issuer-url", "https://idp.example", "--oidc-client-id", "kubellm",
                         "--oidc-username-prefix", "-", "--requestheader-allowed-names", "a, b"]).complete().config()
    assert (cfg.login_max_failures, cfg.login_lockout_seconds) == (3, 60)
    assert cfg.oidc is not None and cfg.oidc.username_prefix == "" and cfg.oidc.client_id == "kubellm"
    assert cfg.requestheader_allowed_names == ("a", "b")


def test_workers_default_to_the_cores_a_cgroup_limit_allows(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == cores
    cpu_max.write_text("150000 100000\n")  # a 1.5-CPU limit: 2 workers, if there are 2 cores
    assert available_cores(cpu_max) == min(cores, 2)
    cpu_max.write_text("50000 100000\n")
    assert available_cores(cpu_max) == 1
    assert available_cores(tmp_path / "absent") == cores
    opts = Options.parse(["--state-dir", str(tmp_path)]).complete()
    assert 1 <= opts.workers <= cores and opts.config().workers == opts.workers
    assert Options.parse(["--workers", "3"]).complete().config().workers == 3
    assert Options.parse(["--workers", "-1"]).complete().validate() == ["--workers must be between 1 and 64"]
