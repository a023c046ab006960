"""One device's transport and work directory for the length of a run."""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable

from benchharness.devices.profile import DeviceProfile
from benchharness.errors import HarnessError
from benchharness.plan.artifacts import Artifact
from benchharness.runners import python as python_runner
from benchharness.transport.base import Transport

#: The work directory of a remote device whose profile names none.
DEFAULT_REMOTE_WORKDIR = "/tmp/benchharness"


class DeviceSession:
    """A device's transport (replaced on reconnect), its run directory and what was pushed."""

    def __init__(
        self,
        profile: DeviceProfile,
        run_id: str,
        transport_factory: Callable[[DeviceProfile], Transport],
    ) -> None:
        self.profile = profile
        self.factory = transport_factory
        self.transport = transport_factory(profile)
        self.local = profile.transport == "local"
        self.python = profile.runtimes.get("python") or (
            python_runner.local_python() if self.local else "python3"
        )
        self.root = profile.workdir or DEFAULT_REMOTE_WORKDIR
        self.workdir = None if self.local else posixpath.join(self.root, run_id)
        self.runner_dir = str(python_runner.RUNNER_DIR) if self.local else ""
        self.pushed: dict[str, str] = {}

    def reconnect(self) -> None:
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()
        self.transport = self.factory(self.profile)
        self.runner_dir = "" if not self.local else self.runner_dir

    def prepare(self) -> None:
        """The runner files on the device (pushed once per session, and after a reconnect)."""
        if not self.local and not self.runner_dir:
            assert self.workdir is not None
            self.runner_dir = python_runner.deploy_runner(self.transport, self.workdir)

    def artifact_path(self, artifact: Artifact) -> str:
        """Where the device reads ``artifact``; pushed unless it already holds those bytes."""
        assert artifact.path is not None
        if self.local:
            return str(artifact.path)
        # artifacts live beside the run directories, keyed by hash, so later runs skip the push
        remote = posixpath.join(self.root, "artifacts", f"{artifact.sha256[:16]}.{artifact.format}")
        if self.pushed.get(remote) != artifact.sha256:
            self.transport.run(["mkdir", "-p", posixpath.dirname(remote)], timeout=60)
            python_runner.push_if_changed(self.transport, artifact.path, remote, artifact.sha256)
            self.pushed[remote] = artifact.sha256
        return remote

    def close(self) -> None:
        if self.workdir:
            with contextlib.suppress(HarnessError, OSError):
                self.transport.run(["rm", "-rf", self.workdir], timeout=60)
        with contextlib.suppress(HarnessError, OSError):
            self.transport.close()
