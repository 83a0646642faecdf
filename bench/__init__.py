"""Strongroom's benchmark suite: Strongroom side by side with OpenBao, moto's server and a
bare ASGI app, driven by wrk over pools of pre-signed requests (see bench/README.md).

Run it with ``make bench`` (or ``make bench-smoke``); never part of ``make test`` except
for the smoke run.
"""
