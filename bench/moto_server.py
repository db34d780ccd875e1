"""moto's server as the benchmarks run it: with local mode's patches (localmode/patches.py), which take out
moto's costs that AWS does not have (a queue counted on every send, a table copied per transaction), so
that a benchmark measures videogen rather than moto. Arguments are moto.server's."""

from __future__ import annotations

from moto.server import main

from videogen_local.localmode import patches

if __name__ == "__main__":
    patches.apply()
    main()
