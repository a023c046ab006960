"""The shell side of remote commands (ssh, adb): the wrapper line, its markers, the kill and
reap scripts, and the private work-directory check. Plain POSIX ``sh`` for dash, bash, busybox
ash and Android's mksh/toybox.

Every call gets a fresh random token. The wrapper exports it as ``BH_TOKEN`` (so every process
the command starts carries it in its environment, even one that left the process group) and puts
it in its PID and status lines, so neither the text a login shell prints first nor anything the
command prints can be taken for them.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from benchharness.errors import TransportError

#: Start of the PID line the wrapper prints before the command runs.
PID_MARKER = "__BH_PID__:"
#: Start of the status line the wrapper prints after the command, when asked to (legacy adb
#: reports no exit status; on every device it proves the command ran to its end).
RC_MARKER = "__BH_RC__:"
#: Environment variable that marks every process of one call, for reap_command_line.
TOKEN_ENV = "BH_TOKEN"
#: Line the reap script ends with: how many marked processes are still there.
REAP_MARKER = "__BH_REAP_LEFT__:"
#: Hex digits of randomness per token: 64 bits, so no other process carries it by chance.
TOKEN_BYTES = 8
#: Times the reap script looks again: a process may fork while its siblings are being killed.
REAP_PASSES = 3

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"[0-9a-f]+\Z")


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def quote_argv(argv: Sequence[str]) -> str:
    """Join argv into one POSIX shell command line in which every word is quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def remote_command_line(
    argv: Sequence[str],
    *,
    token: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    rc_marker: bool = False,
) -> str:
    """One POSIX ``sh`` command line that runs ``argv`` on a device, every word quoted.

    It first prints ``PID_MARKER<token>:<pid>``: sshd and adbd start each command in a new
    session, so that pid is also the process group of everything the command starts, and
    ``kill -9 -<pid>`` reaches all of it. With ``rc_marker`` the shell stays the parent (no
    ``exec``) and prints a newline and ``RC_MARKER<token>:<status>`` as the very last output.
    """
    if not argv:
        raise ValueError("empty argv")
    if not _TOKEN.match(token):
        raise ValueError(f"token {token!r} is not hexadecimal")
    parts = [f"export {TOKEN_ENV}={token}", f"echo {PID_MARKER}{token}:$$"]
    steps: list[str] = []
    if cwd is not None:
        steps.append(f"cd {shlex.quote(cwd)}")
    for key, value in (env or {}).items():
        if not _ENV_NAME.match(key):
            raise ValueError(f"environment variable name {key!r} is not a valid shell name")
        steps.append(f"export {key}={shlex.quote(str(value))}")
    command = quote_argv(argv)
    if rc_marker:
        steps.append(command)
        parts.append(" && ".join(steps))
        parts.append(f"printf '\\n{RC_MARKER}{token}:%d\\n' $?")
    else:
        steps.append("exec " + command)
        parts.append(" && ".join(steps))
    return "; ".join(parts)


def split_pid_marker(stdout: str, token: str) -> tuple[int | None, str]:
    """``(pid, output)``: the PID from the wrapper's line, wherever a login shell's text put it,
    and what came after it; ``(None, stdout)`` if the line is not there (the wrapper never ran).
    Text before the line is the login shell's, not the command's, and is dropped."""
    match = re.search(re.escape(f"{PID_MARKER}{token}:") + r"(\d+)\r?\n", stdout)
    if match is None:
        return None, stdout
    return int(match.group(1)), stdout[match.end() :]


def split_rc_marker(stdout: str, token: str) -> tuple[int | None, str]:
    """``(status, rest)`` when ``stdout`` ends with the wrapper's status line, else
    ``(None, stdout)``: the command did not finish, e.g. the connection dropped. Line ends turned
    into CRLF by a pty are undone."""
    tail = re.compile(r"(\r?\n)" + re.escape(f"{RC_MARKER}{token}:") + r"(\d+)\r?\n?\Z")
    match = tail.search(stdout)
    if match is None:
        return None, stdout
    rest = stdout[: match.start()]
    if match.group(1) == "\r\n":
        # an old adbd ran the command on a pty, which turned every "\n" into "\r\n"
        rest = rest.replace("\r\n", "\n")
    return int(match.group(2)), rest


def reap_command_line(tokens: Iterable[str], pid: int | None = None) -> str:
    """Kill every process that carries one of ``tokens`` in its environment (and, when the
    wrapper's ``pid`` is known, its process group first, in one blow); print how many are left.

    Found by token rather than by a remembered PID, so that a PID reused since (a reboot, hours
    later) is never killed, and a child that left the process group is not missed.
    """
    tokens = [t for t in tokens if _TOKEN.match(t)]
    patterns = " ".join(f"-e {TOKEN_ENV}={t}" for t in tokens)
    find = f"grep -l {patterns} /proc/[0-9]*/environ 2>/dev/null"
    script = []
    if pid is not None:
        script.append(f"kill -9 -{pid} 2>/dev/null || kill -9 {pid} 2>/dev/null")
    if tokens:
        script += [
            f'n=0; while [ $n -lt {REAP_PASSES} ]; do l=$({find}); [ -z "$l" ] && break',
            'for f in $l; do p=${f#/proc/}; kill -9 "${p%/environ}" 2>/dev/null; done',
            "n=$((n+1)); done",
            f'l=$({find}); set -- $l; echo "{REAP_MARKER}$#"',
        ]
    else:
        script.append(f"echo {REAP_MARKER}0")
    return "; ".join(script)


def reap_left(stdout: str) -> int | None:
    """How many marked processes the reap script found still running (None: it did not run)."""
    match = re.search(re.escape(REAP_MARKER) + r"(\d+)", stdout)
    return int(match.group(1)) if match else None


# --- the private work directory ------------------------------------------------------------------

_DIR_TAG = "__BH_DIR__:"


def private_dir_script(path: str) -> str:
    """Create ``path`` (``~`` or ``~/...`` is the device user's home) with mode 0700 if missing,
    then print the user's uid, the directory's physical path and ``ls -ldn`` of it and of
    each of its parents, for check_private_dir."""
    quoted = shlex.quote(path)
    return "; ".join(
        [
            f"d={quoted}",
            'case "$d" in "~") d=$HOME;; "~/"*) d="$HOME/${d#"~/"}";; esac',
            "umask 077",
            f'[ -L "$d" ] && echo "{_DIR_TAG}link $(ls -ldn "$d")"',
            f'[ -d "$d" ] || mkdir -p "$d" || {{ echo "{_DIR_TAG}fail cannot create"; exit 0; }}',
            f'r=$(cd "$d" 2>/dev/null && pwd -P) || '
            f'{{ echo "{_DIR_TAG}fail cannot enter"; exit 0; }}',
            f'echo "{_DIR_TAG}id $(id -u)"',
            f'printf "{_DIR_TAG}path %s\\n" "$r"',
            f'p=$r; while :; do echo "{_DIR_TAG}ls $(ls -ldn "$p")"; [ "$p" = / ] && break; '
            'p=$(dirname "$p"); done',
        ]
    )


@dataclass(frozen=True)
class _Entry:
    mode: str  # "drwx------" as ls prints it
    uid: int
    gid: int

    @property
    def group_writable(self) -> bool:
        return self.mode[5] == "w"

    @property
    def other_writable(self) -> bool:
        return self.mode[8] == "w"

    @property
    def sticky(self) -> bool:
        return self.mode[9] in "tT"

    @property
    def octal(self) -> str:
        bits = 0
        for i, ch in enumerate(self.mode[1:10]):
            if ch not in "-ST":
                bits |= 1 << (8 - i)
        if self.sticky:
            bits |= 0o1000
        return f"{bits:04o}"


def check_private_dir(stdout: str, path: str, where: str, *, check_parents: bool) -> str:
    """The physical path of the work directory ``path`` from private_dir_script's output, or a
    TransportError saying why it is not private and what to do. A parent must be owned by root or
    the user and writable by no one else unless sticky (as /tmp is): else another user could
    rename the work directory away and put theirs in its place."""
    lines = [line[len(_DIR_TAG) :] for line in stdout.splitlines() if line.startswith(_DIR_TAG)]
    fail = next((line[5:] for line in lines if line.startswith("fail ")), None)
    if fail is not None:
        raise TransportError(
            f"{fail} the work directory {path} on {where}; check the profile's 'workdir' and "
            "that the device user may write there"
        )
    try:
        uid = int(next(x for x in lines if x.startswith("id "))[3:].split()[0])
        physical = next(x for x in lines if x.startswith("path "))[5:]
        listed = [x[3:].split() for x in lines if x.startswith("ls ")]
        entries = [_Entry(f[0], int(f[2]), int(f[3])) for f in listed]
    except (StopIteration, ValueError, IndexError):
        raise TransportError(
            f"cannot check the work directory {path} on {where}: unexpected answer "
            f"{stdout.strip()[-300:]!r}"
        ) from None
    if not entries or not physical.startswith("/"):
        raise TransportError(f"cannot check the work directory {path} on {where}")
    link = next((x[5:].split() for x in lines if x.startswith("link ")), None)
    if link is not None and len(link) > 3 and link[2].isdigit() and int(link[2]) not in (0, uid):
        raise TransportError(
            f"the work directory {path} on {where} is a symbolic link owned by uid {link[2]}: "
            "someone else decides where it points. Remove it, or point the profile's 'workdir' "
            "at a real directory of yours"
        )
    own = entries[0]
    if own.uid != uid:
        raise TransportError(
            f"the work directory {physical} on {where} is owned by uid {own.uid}, not by the "
            f"device user (uid {uid}): someone else made it, and could change what runs there. "
            f"Have its owner remove it, or point the profile's 'workdir' at a directory of yours"
        )
    if own.group_writable or own.other_writable:
        raise TransportError(
            f"the work directory {physical} on {where} is writable by group or others (mode "
            f"{own.octal}): another user could replace the runner or drop modules beside it. "
            f"Run `chmod 700 {shlex.quote(physical)}` on the device, or point the profile's "
            "'workdir' at a private directory"
        )
    if check_parents:
        parents = _parent_paths(physical)
        for parent, entry in zip(parents, entries[1:], strict=False):
            unsafe_owner = entry.uid not in (0, uid)
            unsafe_mode = (entry.group_writable or entry.other_writable) and not entry.sticky
            if unsafe_owner or unsafe_mode:
                why = (
                    f"owned by uid {entry.uid}"
                    if unsafe_owner
                    else f"writable by group or others without the sticky bit (mode {entry.octal})"
                )
                raise TransportError(
                    f"{parent} on {where}, a parent of the work directory {physical}, is {why}: "
                    "another user could swap the work directory for theirs. Fix its owner or "
                    "mode, or point the profile's 'workdir' elsewhere (the default is under the "
                    "user's home)"
                )
    return physical


def _parent_paths(path: str) -> list[str]:
    parents = []
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        parents.append(path)
    return parents
