"""`make run`, this checkout against a baseline commit, in the same run: the seconds of each
step and of the whole, and the ratio.

    python -m bench.run_bench --baseline 39621ca     # make bench-run BASELINE=39621ca

The baseline's tree is taken from git (`git archive`) into a temporary folder and runs
with this checkout's environment (PYTHONPATH points at it, so its modules are the ones
imported); each version runs the commands of its own Makefile's `run` target into its own
output folder. The baseline runs first, then this checkout. Results: printed and saved
as out/bench/run.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

from bench.common import save

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steps(checkout: str, venv: str, out: str) -> list[str]:
    """The shell commands of `make run` in `checkout`, setup left out."""
    listing = subprocess.run(
        ["make", "-s", "-n", "-o", f"{venv}/.installed", "run", f"VENV={venv}", f"OUT={out}"],
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in listing.splitlines() if line.strip()]


def mnist_dir() -> str | None:
    """The raw MNIST files both versions read, as this checkout's Makefile finds them:
    $MNIST_DIR, else ../shared/data/mnist beside it. The baseline's Makefile, run from a
    temporary folder, would look beside that folder and find nothing."""
    beside = os.path.abspath(os.path.join(REPO, "..", "shared", "data", "mnist"))
    return os.environ.get("MNIST_DIR") or (beside if os.path.isdir(beside) else None)


def environment(checkout: str) -> dict:
    env = {**os.environ, "PYTHONPATH": checkout, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if found := mnist_dir():
        env["MNIST_DIR"] = found
    return env


def time_run(checkout: str, venv: str, out: str) -> dict:
    env = environment(checkout)
    timings = []
    for command in steps(checkout, venv, out):
        started = time.perf_counter()
        subprocess.run(
            command, shell=True, cwd=checkout, env=env, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        name = " ".join(shlex.split(command)[1:3]).replace("-m jobs.", "")
        timings.append({"step": name, "seconds": round(seconds, 1)})
        print(f"  {name:24s} {seconds:7.1f} s", flush=True)
    return {"steps": timings, "seconds": round(sum(t["seconds"] for t in timings), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--baseline", required=True, help="the commit to compare with")
    args = parser.parse_args(argv)
    venv = os.path.join(REPO, ".venv")
    with tempfile.TemporaryDirectory(prefix="digits-run-bench-") as work:
        baseline = os.path.join(work, "baseline")
        os.makedirs(baseline)
        archive = subprocess.run(
            ["git", "archive", args.baseline], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", baseline], input=archive, check=True)
        results = {}
        for name, checkout in (("baseline", baseline), ("this checkout", REPO)):
            print(f"make run, {name}:", flush=True)
            out = os.path.join(work, "out-" + name.replace(" ", "-"))
            results[name] = time_run(checkout, venv, out)
    ratio = results["this checkout"]["seconds"] / results["baseline"]["seconds"]
    print(
        f"make run: {results['this checkout']['seconds']:.0f} s against "
        f"{results['baseline']['seconds']:.0f} s for {args.baseline}: ratio {ratio:.2f}"
    )
    save("run", {"baseline_commit": args.baseline, **results, "ratio": round(ratio, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
