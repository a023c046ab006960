"""Latency history (issue 28): every run under a results folder as series over time.

``series`` turns ``runs.csv`` rows into series points; ``index`` keeps them in an SQLite index
beside the run folders (the CSVs stay the record); ``changepoint`` finds where a series' level
stepped; ``timeline`` puts these together with the likely cause of each step; ``gate`` is the CI
decision of ``bench gate``; ``page`` the self-contained HTML history page.
"""
