"""``python -m bench``: the benchmark suite's command line."""

from bench.cli import main

raise SystemExit(main())
