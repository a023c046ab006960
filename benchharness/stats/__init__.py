"""Pure statistics of latency samples: a measurement's summary and flags (``summary``), and the
interval across runner processes with the rule that decides how many run (``intervals``).

Below the results stage: the row builder summarises with it; nothing here reads a stored row.
"""
