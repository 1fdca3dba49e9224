"""Benchmarks: :mod:`.harness` times tokforge and its peers on the same documents, ids checked
(``tokforge bench`` and ``benches/encode_bench.py`` are its front ends)."""
