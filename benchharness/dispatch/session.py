"""One device's transport and work directory for the length of a run."""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable

from benchharness.errors import HarnessError, UsageError
from benchharness.plan.artifacts import Artifact
from benchharness.profiles.device_profile import DEFAULT_SSH_WORKDIR, DeviceProfile
from benchharness.results.store import validate_run_id
from benchharness.runners import python as python_runner
from benchharness.transport.base import Transport


class DeviceSession:
    """A device's transport, its private work directory with this run's folder in it, and what
    was pushed there.

    The work directory is checked (``Transport.ensure_private_dir``: ours, not writable by
    others) before anything is put in it; the run's folder is ``<workdir>/<run id>`` with a
    validated run id, and that exact path is all ``close`` removes.
    """

    def __init__(
        self,
        profile: DeviceProfile,
        run_id: str,
        transport_factory: Callable[[DeviceProfile], Transport],
    ) -> None:
        self.profile = profile
        self.run_id = validate_run_id(run_id)
        self.transport = transport_factory(profile)
        self.local = profile.transport == "local"
        self.python = profile.runtimes.get("python") or (
            python_runner.local_python() if self.local else "python3"
        )
        #: the physical work directory, once checked (None: not yet, or a local device)
        self.root: str | None = None
        self.workdir: str | None = None
        self.runner_dir = str(python_runner.RUNNER_DIR) if self.local else ""
        self.pushed: dict[str, str] = {}
        #: set by abort(): nothing more is to run here, not even a retry
        self.aborted = False

    def ensure_workdir(self) -> None:
        """Check (once per session) the device's work directory and name the run's folder."""
        if self.local or self.root is not None:
            return
        wanted = self.profile.workdir or DEFAULT_SSH_WORKDIR
        root = self.transport.ensure_private_dir(wanted)
        if not root.startswith("/") or root.rstrip("/") == "":
            raise UsageError(f"the work directory {wanted} resolved to {root!r} on the device")
        self.root = root.rstrip("/")
        self.workdir = posixpath.join(self.root, self.run_id)

    def reconnect(self) -> None:
        """Drop the connection and keep the transport: it reconnects on its next command and,
        before anything else runs, kills whatever of ours it could not confirm ended."""
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()
        if not self.local:
            self.runner_dir = ""

    def prepare(self) -> None:
        """The runner files on the device (pushed once per session, and after a reconnect)."""
        self.ensure_workdir()
        if not self.local and not self.runner_dir:
            assert self.workdir is not None
            self.runner_dir = python_runner.deploy_runner(self.transport, self.workdir)

    def artifact_path(self, artifact: Artifact) -> str:
        """Where the device reads ``artifact``; pushed unless it already holds those bytes."""
        assert artifact.path is not None
        if self.local:
            return str(artifact.path)
        self.ensure_workdir()
        assert self.root is not None
        # artifacts live beside the run directories, keyed by hash, so later runs skip the push
        remote = posixpath.join(self.root, "artifacts", f"{artifact.sha256[:16]}.{artifact.format}")
        if self.pushed.get(remote) != artifact.sha256:
            self.transport.run(["mkdir", "-p", posixpath.dirname(remote)], timeout=60)
            python_runner.push_if_changed(self.transport, artifact.path, remote, artifact.sha256)
            self.pushed[remote] = artifact.sha256
        return remote

    def abort(self) -> None:
        """From another thread (Ctrl-C): drop the connection under a running command, so its
        transport kills it on the device (now, or on the reconnect ``close`` makes)."""
        self.aborted = True
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()

    def close(self) -> None:
        """Kill leftovers of ours on the device, remove this run's folder, disconnect."""
        with contextlib.suppress(HarnessError, OSError):
            self.transport.reap()
        if self.root and self.workdir == posixpath.join(self.root, self.run_id):
            with contextlib.suppress(HarnessError, OSError):
                self.transport.run(["rm", "-rf", self.workdir], timeout=60)
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()
