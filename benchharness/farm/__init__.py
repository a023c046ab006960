"""The device farm across machines, on Dask distributed.

``bench worker`` on each host that has devices joins a Dask scheduler; every device is a worker
resource (its profile name, and its optional ``class``), so the scheduler places each runner
process on the host that holds its device, one at a time. ``bench run --scheduler`` is the
coordinator: it sends every process there and writes the rows on its own disk as they arrive.

Only ``--scheduler`` and ``bench worker`` import the modules that import Dask (``worker``,
``serve``, ``client``, ``coordinator``); ``model`` and ``artifacts`` are plain Python.
"""
