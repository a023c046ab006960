"""An emulated Android device for adb transport tests: the DEVICE side of the ADB wire protocol.

Debian has no adbd for Linux, so this small standard-library TCP server plays the phone. The real
``adb`` client connects to it with ``adb connect 127.0.0.1:PORT`` and drives it exactly as it
drives a phone over Wi-Fi: ``CNXN`` handshake, ``OPEN/OKAY/WRTE/CLSE`` streams, ``shell:`` (legacy)
and ``shell,v2,...:`` (packet framing with exit status) and ``sync:`` (STAT, LIST, SEND, RECV).

Paths: the device's ``/data/local/tmp`` is a sandbox directory on this host. Device paths are
mapped by prefix: in sync requests ``/data/local/tmp/...`` becomes ``SANDBOX/...``; in shell
command lines every occurrence of ``/data/local/tmp`` is rewritten textually to the sandbox path,
and the sandbox path is rewritten back in the output, so ``pwd`` or an error message shows device
paths. Commands run with this host's ``/bin/sh`` in the sandbox (adbd runs them in ``/``; the
sandbox keeps stray relative paths away from the host). Like an unrooted phone, sync may read any
path but write only under ``/data/local/tmp`` (anything else fails with "Permission denied").

``rc_text`` is printed on stdout before every shell command, as by a device whose shell rc file
prints something; ``stall_recv_after`` makes file reads (``adb pull``) stop sending after that many
bytes and hang, like a stalled USB link, until ``stop()``.

``root``: an ARM64 user space (``tests/support/arm64.py``) the phone runs in. Its
``/data/local/tmp`` is then the sandbox, commands run as ``chroot ROOT /bin/sh -c ...`` in a private
mount namespace (``arm64.in_root_argv``) with no path rewriting, in a clean environment (as
adbd's: PATH and HOME only), and sync reads any path inside the root.

``legacy=True`` advertises no features, so the client falls back to ``shell:`` with merged
stdout/stderr and no exit status; otherwise the device advertises ``shell_v2``. ``stop()`` makes
the device vanish (listener and connections closed; commands already running go on, as they
would on a phone whose cable was pulled); ``start()`` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from tests.support.sshd import free_port

#: The device path the sandbox stands for.
DEVICE_TMP = "/data/local/tmp"

A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
#: Protocol version that lets the host skip payload checksums (adb >= 7.0 on both sides).
A_VERSION = 0x01000001
#: Largest payload we accept and send per message (the host may ask for less).
MAX_PAYLOAD = 256 * 1024
#: Largest DATA chunk of the sync protocol.
SYNC_DATA_MAX = 64 * 1024

# shell v2 packet ids
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINDOW = range(6)

HEADER = struct.Struct("<6I")
#: The environment of a command on the ARM64 phone: adbd's own (none of this host's variables,
#: such as PYTHONPATH, may leak into the aarch64 processes).
ROOT_SHELL_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/"}


class _Closed(Exception):
    """The connection or stream went away."""


class EmulatedDevice:
    """One emulated phone listening on 127.0.0.1:port."""

    host = "127.0.0.1"

    def __init__(
        self,
        sandbox: Path,
        *,
        legacy: bool = False,
        port: int | None = None,
        model: str = "BenchEmu",
        rc_text: bytes = b"",
        stall_recv_after: int | None = None,
        root: Path | None = None,
    ) -> None:
        self.sandbox = Path(sandbox).resolve()
        self.root = Path(root).resolve() if root is not None else None
        if self.root is not None and self.sandbox != self.root / DEVICE_TMP.lstrip("/"):
            raise ValueError(f"a phone in {self.root} keeps /data/local/tmp inside it")
        self.sandbox.mkdir(parents=True, exist_ok=True)
        self.legacy = legacy
        self.model = model
        self._listener: socket.socket | None = None
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self.port = port or free_port()  # this worker's own ports (see free_port)
        self.rc_text = rc_text
        self.stall_recv_after = stall_recv_after
        #: set by stop(): releases transfers stalled by ``stall_recv_after``
        self.stopped = threading.Event()
        #: every service a host opened, for tests that check what the client asked for
        self.services: list[str] = []

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def features(self) -> list[str]:
        return [] if self.legacy else ["shell_v2", "cmd"]

    def banner(self) -> bytes:
        props = f"ro.product.name=bhemu;ro.product.model={self.model};ro.product.device=bhemu;"
        return f"device::{props}features={','.join(self.features)}".encode()

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.stopped.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(8)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()

    def __enter__(self) -> EmulatedDevice:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # stopped
            conn = _Connection(self, sock)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # --- path mapping ------------------------------------------------------------------------

    def to_host(self, device_path: str) -> Path | None:
        """Host path of a device path under /data/local/tmp, else None."""
        norm = os.path.normpath(device_path)
        if norm == DEVICE_TMP:
            return self.sandbox
        if norm.startswith(DEVICE_TMP + "/"):
            return self.sandbox / norm[len(DEVICE_TMP) + 1 :]
        return None

    def host_path(self, device_path: str) -> Path:
        """Where sync finds a device path on this host (reads may go anywhere)."""
        mapped = self.to_host(device_path)
        if mapped is not None:
            return mapped
        if self.root is not None:
            return self.root / os.path.normpath(device_path).lstrip("/")
        return Path(device_path)

    def map_command(self, command: str) -> str:
        if self.root is not None:  # inside the root the device's paths are real
            return command
        return command.replace(DEVICE_TMP, str(self.sandbox))

    def unmap_output(self, data: bytes) -> bytes:
        if self.root is not None:
            return data
        return data.replace(str(self.sandbox).encode(), DEVICE_TMP.encode())

    def shell_argv(self, command: str) -> list[str]:
        """How one shell command line runs: this host's sh in the sandbox, or the root's."""
        if self.root is None:
            return ["/bin/sh", "-c", self.map_command(command)]
        from tests.support.arm64 import in_root_argv  # only the ARM64 phone needs it

        return in_root_argv(self.root, ["/bin/sh", "-c", command])


class _Stream:
    """One open service on a connection: our id, the host's id, flow control for our writes."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int) -> None:
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.acked = threading.Event()
        self.acked.set()
        self.closed = threading.Event()
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.on_close: Callable[[], None] = lambda: None

    def write(self, data: bytes) -> None:
        """Send ``data`` in WRTEs, each waiting for the host's OKAY of the previous one."""
        view = memoryview(data)
        while view:
            chunk, view = view[: self.conn.max_payload], view[self.conn.max_payload :]
            while not self.acked.wait(0.5):
                if self.closed.is_set():
                    raise _Closed
            if self.closed.is_set():
                raise _Closed
            self.acked.clear()
            self.conn.send(A_WRTE, self.local_id, self.remote_id, bytes(chunk))

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.conn.send(A_CLSE, self.local_id, self.remote_id)
            self.conn.drop_stream(self.local_id)


class _Connection:
    def __init__(self, device: EmulatedDevice, sock: socket.socket) -> None:
        self.device = device
        self.sock = sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.alive = True

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for stream in list(self.streams.values()):
            stream.closed.set()
            stream.on_close()

    def send(self, command: int, arg0: int, arg1: int, payload: bytes = b"") -> None:
        header = HEADER.pack(
            command, arg0, arg1, len(payload), sum(payload) & 0xFFFFFFFF, command ^ 0xFFFFFFFF
        )
        with self.send_lock:
            if not self.alive:
                raise _Closed
            try:
                self.sock.sendall(header + payload)
            except OSError as exc:
                raise _Closed from exc

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError as exc:
                raise _Closed from exc
            if not chunk:
                raise _Closed
            buf += chunk
        return bytes(buf)

    def drop_stream(self, local_id: int) -> None:
        self.streams.pop(local_id, None)

    def serve(self) -> None:
        try:
            while True:
                command, arg0, arg1, length, _check, magic = HEADER.unpack(self._recv_exact(24))
                if magic != command ^ 0xFFFFFFFF:
                    raise _Closed  # not an adb host: hang up, as adbd does
                payload = self._recv_exact(length) if length else b""
                self._dispatch(command, arg0, arg1, payload)
        except _Closed:
            pass
        finally:
            self.close()
            self.device._forget(self)

    def _dispatch(self, command: int, arg0: int, arg1: int, payload: bytes) -> None:
        if command == A_CNXN:
            self.max_payload = max(1024, min(arg1 or MAX_PAYLOAD, MAX_PAYLOAD))
            self.send(A_CNXN, min(arg0, A_VERSION), MAX_PAYLOAD, self.device.banner())
        elif command == A_OPEN:
            self._open(arg0, payload.rstrip(b"\0").decode("utf-8", "replace"))
        elif command == A_OKAY:
            stream = self.streams.get(arg1)
            if stream is not None:
                stream.acked.set()
        elif command == A_WRTE:
            stream = self.streams.get(arg1)
            if stream is None:
                self.send(A_CLSE, 0, arg0)
                return
            stream.on_data(payload)
            self.send(A_OKAY, stream.local_id, stream.remote_id)
        elif command == A_CLSE:
            stream = self.streams.get(arg1)
            if stream is not None:
                stream.on_close()
                stream.close()  # real adbd answers a host CLSE with its own
        # AUTH never comes: this device does not ask for it

    def _open(self, remote_id: int, service: str) -> None:
        self.device.services.append(service)
        handler: Callable[[_Stream, str], None] | None = None
        arg = ""
        if service.startswith("shell,v2") or service.startswith("shell,"):
            options, _, arg = service.partition(":")
            handler = _shell_v2 if "v2" in options.split(",") else _shell_legacy
            if handler is _shell_v2 and self.device.legacy:
                handler = None  # a legacy device does not know the v2 service
        elif service.startswith("shell:"):
            arg = service[len("shell:") :]
            handler = _shell_legacy
        elif service.startswith("sync:"):
            handler = _sync
        if handler is None or (handler is not _sync and not arg):
            # unknown services and interactive shells are refused
            self.send(A_CLSE, 0, remote_id)
            return
        local_id = self.next_id
        self.next_id += 1
        stream = _Stream(self, local_id, remote_id)
        self.streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        handler(stream, arg)


# --- shell ---------------------------------------------------------------------------------------


def _spawn(stream: _Stream, command: str, *, merge: bool) -> subprocess.Popen[bytes]:
    device = stream.conn.device
    # adbd starts every command in a new session (setsid), so its pid is its process group
    return subprocess.Popen(
        device.shell_argv(command),
        cwd=device.sandbox,
        env=ROOT_SHELL_ENV if device.root is not None else None,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        start_new_session=True,
    )


def _pump(pipe: object, send: Callable[[bytes], None], device: EmulatedDevice) -> threading.Thread:
    def run() -> None:
        read = pipe.read1  # type: ignore[attr-defined]
        with contextlib.suppress(_Closed, OSError, ValueError):
            while True:
                data = read(SYNC_DATA_MAX)
                if not data:
                    break
                send(device.unmap_output(data))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _shell_legacy(stream: _Stream, command: str) -> None:
    device = stream.conn.device
    proc = _spawn(stream, command, merge=True)
    assert proc.stdin is not None
    proc.stdin.close()  # the legacy protocol has no end-of-input; stdin is never used here

    def run() -> None:
        if device.rc_text:
            with contextlib.suppress(_Closed):
                stream.write(device.rc_text)
        pump = _pump(proc.stdout, stream.write, device)
        pump.join()
        proc.wait()
        with contextlib.suppress(_Closed):
            stream.close()

    threading.Thread(target=run, daemon=True).start()


def _shell_v2(stream: _Stream, command: str) -> None:
    device = stream.conn.device
    proc = _spawn(stream, command, merge=False)
    send_lock = threading.Lock()  # stdout and stderr packets must not interleave mid-packet

    def packet(kind: int) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            with send_lock:
                stream.write(struct.pack("<BI", kind, len(data)) + data)

        return send

    buffer = bytearray()

    def on_data(data: bytes) -> None:
        buffer.extend(data)
        while len(buffer) >= 5:
            kind, length = struct.unpack_from("<BI", buffer)
            if len(buffer) < 5 + length:
                return
            body = bytes(buffer[5 : 5 + length])
            del buffer[: 5 + length]
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                if kind == SHELL_STDIN:
                    proc.stdin.write(body)
                    proc.stdin.flush()
                elif kind == SHELL_CLOSE_STDIN:
                    proc.stdin.close()

    stream.on_data = on_data

    def run() -> None:
        if device.rc_text:
            with contextlib.suppress(_Closed):
                packet(SHELL_STDOUT)(device.rc_text)
        pumps = [
            _pump(proc.stdout, packet(SHELL_STDOUT), device),
            _pump(proc.stderr, packet(SHELL_STDERR), device),
        ]
        for pump in pumps:
            pump.join()
        code = proc.wait()
        with contextlib.suppress(_Closed):
            packet(SHELL_EXIT)(bytes([code & 0xFF]))
            stream.close()

    threading.Thread(target=run, daemon=True).start()


# --- sync ----------------------------------------------------------------------------------------


def _sync(stream: _Stream, _arg: str) -> None:
    """The sync service: requests arrive as a byte stream that WRTE boundaries cut anywhere, so
    a worker thread parses them from a buffer fed by on_data."""
    cond = threading.Condition()
    buffer = bytearray()
    done = [False]

    def on_data(data: bytes) -> None:
        with cond:
            buffer.extend(data)
            cond.notify()

    def on_close() -> None:
        with cond:
            done[0] = True
            cond.notify()

    def take(n: int) -> bytes:
        with cond:
            while len(buffer) < n:
                if done[0]:
                    raise _Closed
                cond.wait()
            out = bytes(buffer[:n])
            del buffer[:n]
            return out

    stream.on_data = on_data
    stream.on_close = on_close
    device = stream.conn.device

    def request() -> tuple[bytes, int]:
        head = take(8)
        return head[:4], struct.unpack("<I", head[4:])[0]

    def fail(message: str) -> None:
        data = message.encode()
        stream.write(b"FAIL" + struct.pack("<I", len(data)) + data)

    def run() -> None:
        with contextlib.suppress(_Closed):
            while True:
                cmd, length = request()
                if cmd == b"QUIT":
                    break
                arg = take(length).decode("utf-8", "replace")
                if cmd == b"STAT":
                    try:
                        st = os.stat(device.host_path(arg))
                        reply = struct.pack(
                            "<III", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)
                        )
                    except OSError:
                        reply = b"\0" * 12  # all zero: no such file
                    stream.write(b"STAT" + reply)
                elif cmd == b"LIST":
                    _list(stream, device.host_path(arg))
                elif cmd == b"RECV":
                    _recv(stream, device.host_path(arg), fail, device)
                elif cmd == b"SEND":
                    _send(stream, device, arg, request, take, fail)
                else:
                    fail(f"unknown sync request {cmd!r}")
                    break
        with contextlib.suppress(_Closed):
            stream.close()

    threading.Thread(target=run, daemon=True).start()


def _list(stream: _Stream, path: Path) -> None:
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            name = entry.name.encode()
            stream.write(
                b"DENT"
                + struct.pack("<IIII", st.st_mode, st.st_size, int(st.st_mtime), len(name))
                + name
            )
    stream.write(b"DONE" + b"\0" * 16)


def _recv(stream: _Stream, path: Path, fail: Callable[[str], None], device: EmulatedDevice) -> None:
    try:
        fh = path.open("rb")
    except OSError as exc:
        fail(f"open failed: {exc.strerror}")
        return
    sent = 0
    with fh:
        while chunk := fh.read(SYNC_DATA_MAX):
            if device.stall_recv_after is not None and sent >= device.stall_recv_after:
                device.stopped.wait()  # the link stalls; nothing more arrives
                raise _Closed
            stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            sent += len(chunk)
    stream.write(b"DONE" + struct.pack("<I", 0))


def _send(
    stream: _Stream,
    device: EmulatedDevice,
    arg: str,
    request: Callable[[], tuple[bytes, int]],
    take: Callable[[int], bytes],
    fail: Callable[[str], None],
) -> None:
    device_path, _, mode_text = arg.rpartition(",")
    mode = int(mode_text) if mode_text.isdigit() else 0o644
    target = device.to_host(device_path)
    error: str | None = None
    fh = None
    if target is None:
        error = "couldn't create file: Permission denied"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fh = target.open("wb")
        except OSError as exc:
            error = f"couldn't create file: {exc.strerror}"
    # the host streams all DATA and the DONE before it reads our answer: consume them all
    while True:
        kind, length = request()
        if kind == b"DATA":
            data = take(length)
            if fh is not None and error is None:
                try:
                    fh.write(data)
                except OSError as exc:
                    error = f"write failed: {exc.strerror}"
        elif kind == b"DONE":
            break
        else:
            error = error or f"unexpected sync request {kind!r} during SEND"
            break
    if fh is not None:
        try:
            fh.close()
        except OSError as exc:
            error = error or f"write failed: {exc.strerror}"
    if error is not None:
        if target is not None:
            with contextlib.suppress(OSError):
                target.unlink()
        fail(error)
        return
    assert target is not None
    with contextlib.suppress(OSError):
        os.chmod(target, stat.S_IMODE(mode) or 0o644)
    stream.write(b"OKAY" + struct.pack("<I", 0))
