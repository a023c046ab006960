"""The device farm across machines, on Dask distributed, under mutual TLS off loopback.

``bench worker`` on each host that has devices joins a Dask scheduler; every device is a worker
resource (its profile name, and its optional ``class``), so the scheduler places each runner
process on the host that holds its device, one at a time. ``bench run --scheduler`` is the
coordinator: it sends every process there, by the same process rule as a local run, and writes
the rows on its own disk as they arrive.

``security`` says how every member reaches the scheduler (certificates of the farm's CA; plain
``tcp://`` only on loopback unless ``--insecure``), ``certificates`` makes them (``bench farm
certs``), ``descriptions`` checks field by field what a bench worker says it holds (plain data,
never unpickled from an unknown peer). Only ``--scheduler`` and ``bench worker`` import the
modules that import Dask (``worker_plugin``, ``serve``, ``client``, ``coordinator``);
``messages``, ``artifact_cache``, ``security``, ``certificates`` and ``descriptions`` are plain
Python.
"""
