"""The code shipped to a device: the runner, its method, profiler bindings, probe and protocol.

Every module here imports only the standard library (and, inside the runner, numpy and the
runtimes), never ``benchharness``: on the device these files sit side by side in one folder and
import each other as plain modules. The host imports ``protocol``, ``probe`` and ``method`` from
here as a package, so what both sides must agree on is written once.
"""
