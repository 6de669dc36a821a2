"""The unprivileged user Elasticsearch runs as: it refuses to start as root.

When stackctl runs as root (CI, fresh machines), Elasticsearch runs as the system user
``elasticsearch`` (created if missing) and owns its folders under .state/. When stackctl runs as
an ordinary user, every server simply runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stacklib import StackError


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def service_account(name: str) -> Account | None:
    """None when not root; as root, the system user ``name``, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _create_system_user(name)
        entry = pwd.getpwnam(name)
    return Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _create_system_user(name: str) -> None:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [
        useradd, "--system", "--user-group", "--no-create-home",
        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name,
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise StackError(f"cannot create system user {name!r}: {str(detail).strip()}") from None


def give_tree(path: Path, account: Account | None) -> None:
    """Make ``account`` own ``path`` and everything below it (a no-op when not root)."""
    if account is None or not path.exists():
        return
    os.lchown(path, account.uid, account.gid)
    for directory, subdirs, files in os.walk(path):
        for name in (*subdirs, *files):
            os.lchown(os.path.join(directory, name), account.uid, account.gid)


def give_tree_if_needed(path: Path, account: Account | None) -> None:
    """Like :func:`give_tree`, skipped when the top already belongs to ``account`` (fast path)."""
    if account is not None and path.exists() and path.stat().st_uid != account.uid:
        give_tree(path, account)


def require_traversable(path: Path, account: Account | None) -> None:
    """Every folder above ``path`` must let ``account`` through, or its server cannot start."""
    if account is None:
        return
    for folder in reversed(path.parents):
        mode = folder.stat()
        if mode.st_uid == account.uid:
            continue
        allowed = stat.S_IXGRP if mode.st_gid == account.gid else stat.S_IXOTH
        if not mode.st_mode & allowed:
            raise StackError(
                f"user {account.name!r} cannot enter {folder} (mode "
                f"{stat.filemode(mode.st_mode)}): move the project or run chmod o+x {folder}"
            )
