"""One entry point for the benchmarks (``make bench ARGS="..."``).

    make bench                                  # the speed suite: scaling, throughput, first request
    make bench ARGS="scaling --sizes 500 1000"  # one benchmark with its own arguments
    make bench ARGS="list"                      # the names

Each benchmark is a script beside this file (``bench_<name>.py``) with its own ``--help``; their
method and recorded results are in README.md here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = ("scaling", "throughput", "first_request")  # issue 12's figures, in this order


def names() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def run(name: str, args: list[str]) -> int:
    script = HERE / f"bench_{name}.py"
    if not script.exists():
        print(f"no benchmark {name!r}; one of: {', '.join(names())}", file=sys.stderr)
        return 2
    print(f"== {name} {' '.join(args)}", file=sys.stderr, flush=True)
    return subprocess.run([sys.executable, str(script), *args]).returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["list"]:
        print("\n".join(names()))
        return 0
    if argv:
        return run(argv[0].replace("-", "_"), argv[1:])
    failed = [name for name in SUITE if run(name, ["--ndvi"] if name == "first_request" else []) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
