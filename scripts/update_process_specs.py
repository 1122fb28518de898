#!/usr/bin/env python3
"""Refresh the pinned copy of the official openEO process specs inside the package.

    python scripts/update_process_specs.py <openeo-processes checkout> [--ref TEXT]

Copies, from a checkout of https://github.com/Open-EO/openeo-processes, the spec of every process this
backend offers (``<id>.json``, else ``proposals/<id>.json``) and the LICENSE into
backend/process_specs/openeo-processes/, removes specs of processes no longer offered, and writes the
README there with the source and version. ``--ref`` names the version when the checkout is not a git
repository (e.g. "branch add-tests, commit 432281e"); in a git checkout it is read with git.
Afterwards, review `git diff backend/process_specs` and check every override in backend/process_specs/
against the new official text (see backend/process_specs/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.processing.process_registry import OFFICIAL_SUBDIR, SPECS_DIR, offered_ids, spec_files  # noqa: E402

SOURCE = "https://github.com/Open-EO/openeo-processes"


def git_ref(checkout: Path) -> str | None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != checkout.resolve():
            return None  # a plain folder inside some other repository
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return None
    described = git("describe", "--tags", "--always")
    return f"{described} (commit {commit})"


def readme(ref: str, copied: dict[str, str]) -> str:
    proposals = sorted(pid for pid, where in copied.items() if where == "proposals")
    return f"""# Official openEO process specs (pinned copy)

- Source: [openeo-processes]({SOURCE})
- Version: {ref}
- Copied: {dt.date.today().isoformat()}, the specs of the {len(copied)} offered processes that have one
  ({len(proposals)} of them from `proposals/`), unchanged
- License: Apache-2.0, see `LICENSE` (from the same version)

Written by `scripts/update_process_specs.py`: do not edit these files. To refresh them, run
`python scripts/update_process_specs.py <openeo-processes checkout>` (with `--ref TEXT` when the checkout
is not a git repository), then review the overrides in `backend/process_specs/` (see its README).
"""


def update(checkout: Path, ref: str, target: Path) -> dict[str, str]:
    available = spec_files(checkout)
    if not available or not (checkout / "LICENSE").is_file():
        raise SystemExit(f"{checkout} is not an openeo-processes checkout (no *.json specs or no LICENSE)")
    copied = {}
    if target.exists():
        shutil.rmtree(target)
    (target / "proposals").mkdir(parents=True)
    for pid in sorted(offered_ids()):
        source = available.get(pid)
        if source is None:
            continue  # no official spec: openeo-processes-dask's is served
        spec = json.loads(source.read_text(encoding="utf-8"))
        if spec.get("id") != pid:
            raise SystemExit(f"{source}: id {spec.get('id')!r} does not match the file name")
        where = "proposals" if source.parent.name == "proposals" else "stable"
        shutil.copyfile(source, target / ("proposals" if where == "proposals" else "") / source.name)
        copied[pid] = where
    shutil.copyfile(checkout / "LICENSE", target / "LICENSE")
    (target / "README.md").write_text(readme(ref, copied), encoding="utf-8")
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="root of an openeo-processes checkout")
    parser.add_argument("--ref", help="version of the checkout (default: read with git)")
    args = parser.parse_args(argv)
    ref = args.ref or git_ref(args.checkout)
    if not ref:
        parser.error("the checkout is not a git repository: name its version with --ref")
    target = SPECS_DIR / OFFICIAL_SUBDIR
    copied = update(args.checkout.resolve(), ref, target)
    missing = sorted(offered_ids() - set(copied))
    print(f"copied {len(copied)} specs into {target.relative_to(REPO)}; "
          f"without an official spec (openeo-processes-dask's is served): {missing or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
