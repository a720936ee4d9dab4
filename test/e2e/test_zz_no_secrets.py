"""Runs after the other end-to-end tests (file order): nothing they used as a secret is in the server's
log or the audit log of the whole run — no password, password hash, bearer token or credential."""

from __future__ import annotations

import re

from conftest import APIServer
from test_login import admin_password

PASSWORDS = ("a long and good password", "another long good password", "correct horse battery staple",
             "weakling1", "wrong password!!")
CREDENTIALS = ("s3cr3t-t0ken-value", "audit-secret-token-1234567", "abc.def")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def test_no_secret_in_logs_or_audit(apiserver: APIServer) -> None:
    texts = {"server log": apiserver.log.read_text(), "audit log": (apiserver.state_dir / "audit.log").read_text()}
    for where, text in texts.items():
        assert text, where
        for secret in (admin_password(apiserver), *PASSWORDS, *CREDENTIALS):
            assert secret not in text, f"{secret!r} found in the {where}"
        assert "$argon2id$" not in text, f"a password hash in the {where}"
        assert not JWT.search(text), f"a bearer token in the {where}"
