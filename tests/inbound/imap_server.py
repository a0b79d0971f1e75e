"""A real IMAP server for the poller tests: Dovecot on 127.0.0.1 with a throwaway config,
one mailbox user (or more), maildir storage in a temporary folder. Needs the `dovecot` binary
(Debian: apt-get install dovecot-imapd) and root (the mail user is `nobody`)."""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tests.conftest import missing
from tests.sending.smtp_server import HOST, free_port

USER, PASSWORD = "robot", "imap-test-secret"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    port: int
    user: str = USER
    password: str = PASSWORD

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4(HOST, self.port, timeout=10)
        imap.login(self.user, self.password)
        imap.select("INBOX")
        try:
            yield imap
        finally:
            imap.logout()

    def append(self, raw: bytes, *, seen: bool = False) -> None:
        with self.client() as imap:
            status, _ = imap.append("INBOX", "(\\Seen)" if seen else None, None, raw)
            assert status == "OK"

    def login(self, user: str, password: str) -> Dovecot:
        """The same server, signed in as another of its users."""
        return replace(self, user=user, password=password)

    def unseen(self) -> list[int]:
        with self.client() as imap:
            _, data = imap.uid("SEARCH", "UNSEEN")
            return [int(uid) for uid in data[0].split()]

    def mark_unseen(self, uid: int) -> None:
        with self.client() as imap:
            imap.uid("STORE", str(uid), "-FLAGS", "(\\Seen)")


def _wait_for(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"dovecot did not listen on {HOST}:{port}")


@contextmanager
def dovecot_server(users: Mapping[str, str] | None = None) -> Iterator[Dovecot]:
    """Dovecot with the user `robot` and the further `users` (login -> password)."""
    binary = shutil.which("dovecot", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if binary is None:
        missing("no IMAP server for the poller tests: install dovecot-imapd")
    if os.geteuid() != 0:
        missing("the Dovecot test server runs its mail user as nobody, which needs root")
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid)
    root = Path(tempfile.mkdtemp(prefix="optout-dovecot-"))
    root.chmod(0o755)  # the login processes run as dovenull and must reach base_dir
    (root / "home").mkdir()
    os.chown(root / "home", nobody.pw_uid, group.gr_gid)
    logins = {USER: PASSWORD, **(users or {})}
    (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in logins.items()))
    port = free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(root=root, host=HOST, port=port, uid=nobody.pw_uid, gid=group.gr_gid)
    )
    log = (root / "dovecot.out").open("wb")
    master = subprocess.Popen(
        [binary, "-F", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
    )  # in the foreground: this process owns it and stops it
    try:
        _wait_for(port)
        yield Dovecot(port)
    finally:
        master.terminate()
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
