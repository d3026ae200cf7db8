"""The review loop, measured: does a model learn the digits people answered for it?

    python -m bench.loop_bench --data out/data           # make bench-loop (seed and strong)
    python -m bench.loop_bench --data out/data --recipes seed --epochs 2 --night 600

An in-house set, made here from the first half of MNIST's test split in a style no
recipe trains on (this module's own generator, not the scorer's normalisation: a thick
marker, a slant, coloured ink, lined paper, anywhere on a larger page), is split into a
first night and held-out digits. For each recipe:

1. train on MNIST (`digits train`), score the first night (`digits score`);
2. answer its review queue with the true labels through the review page's own HTTP
   interface (`review.server`, as the page's keys post them), at most --answers; and,
   separately, the same number of inputs drawn at random from the night (a copy of the
   partition whose review list is that sample), answered the same way;
3. `digits preprocess --labelled` with each labels folder, retrain (same recipe, seed and
   epochs), `digits evaluate` (small suites);
4. score the held-out in-house digits with the model before and after, and measure MNIST
   accuracy on the *other* half of the test split (no in-house image comes from it).

Prints per recipe: held-out accuracy and accepted share before and after (review answers,
random answers), MNIST's untouched half before and after, and the answers it took.
Results: out/bench/loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import urllib.request

import numpy as np
from PIL import Image, ImageFilter

from bench.common import save, timed

MNIST_HALF = 5000  # test digits 0-4999 make the in-house set; 5000-9999 stay MNIST's


# --- The in-house style (its own generator). --------------------------------------------


def in_house(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One MNIST digit as a team's form would hold it: written with a thick marker, slanted,
    in blue, green or red ink, on lined off-white paper, somewhere on a 96x96 page."""
    size = int(rng.integers(56, 76))
    ink = Image.fromarray(digit).resize((size, size), Image.BICUBIC)
    ink = ink.filter(ImageFilter.MaxFilter(int(rng.choice([5, 7]))))  # the marker's width
    shear = float(rng.uniform(0.25, 0.45)) * float(rng.choice([-1, 1]))
    ink = ink.transform(ink.size, Image.AFFINE, (1, shear, -shear * size / 2, 0, 1, 0),
                        Image.BICUBIC)  # fmt: skip
    page = np.full((96, 96, 3), rng.integers(232, 248), np.float32)
    page[:, :, 2] += 6  # a faintly blue paper
    for y in range(int(rng.integers(4, 12)), 96, 14):
        page[y, :] = (170, 200, 235)  # the ruled lines
    colour = np.array([(30, 50, 160), (20, 110, 60), (170, 30, 40)][int(rng.integers(3))])
    x, y = (int(v) for v in rng.integers(0, 96 - size, 2))
    alpha = np.zeros((96, 96), np.float32)
    alpha[y : y + size, x : x + size] = np.asarray(ink, np.float32) / 255
    page = page * (1 - alpha[..., None]) + colour * alpha[..., None]
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))


def make_in_house(test_pixels, test_labels, folder: str, night: int, held_out: int) -> dict:
    """PNG files of the first half of the test split: `night` of them in folder/night, the
    next `held_out` in folder/held_out; returns {path: true digit}."""
    rng = np.random.default_rng(2026)
    truth = {}
    for i in range(night + held_out):
        part = "night" if i < night else "held_out"
        os.makedirs(os.path.join(folder, part), exist_ok=True)
        path = os.path.join(folder, part, f"form-{i:05d}.png")
        in_house(test_pixels[i], rng).save(path)
        truth[os.path.abspath(path)] = int(test_labels[i])
    return truth


# --- The jobs, and the review page's HTTP interface. --------------------------------------


def job(*args: str) -> float:
    return timed([sys.executable, "-m", *args])


def score(model: str, inputs: str, output: str) -> list[dict]:
    """`digits score` of a folder of PNGs (a model not yet blessed is allowed); its rows.
    A night in a style MNIST never showed sets off the drift alarm (exit status 4, after
    every output is written): that is expected here, and kept in the partition."""
    if not os.path.exists(os.path.join(output, "_SUCCESS")):
        pattern = os.path.join(inputs, "*.png")
        command = [sys.executable, "-m", "jobs.score", "--model", model, "--input", pattern,
                   "--output", output, "--allow-unblessed"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode not in (0, 4):
            raise RuntimeError(f"digits score exited {done.returncode}: {done.stderr[-2000:]}")
    rows = []
    for name in sorted(os.listdir(output)):
        if name.startswith("predictions-") and name.endswith(".jsonl"):
            with open(os.path.join(output, name)) as handle:
                rows += [json.loads(line) for line in handle]
    return rows


def answer_queue(partition: str, labels: str, truth: dict, limit: int) -> int:
    """Answers a partition's review queue with the true digits through the review
    server's HTTP interface, as the page posts them; returns how many were answered."""
    from review import queue, server
    from review.answers import Answers

    night = queue.load(partition)
    httpd = server.serve(server.Review(night, Answers(labels)), "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    answered = 0
    try:
        while answered < limit:
            with urllib.request.urlopen(f"{base}/api/next?reviewer=bench") as reply:
                item = json.load(reply)["item"]
            if item is None:
                break
            key = os.path.abspath(night.items[item["index"]].key)
            body = json.dumps({"index": item["index"], "answer": str(truth[key]),
                               "reviewer": "bench"}).encode()  # fmt: skip
            headers = {"Content-Type": "application/json"}
            request = urllib.request.Request(f"{base}/api/answer", body, headers, method="POST")
            urllib.request.urlopen(request).close()
            answered += 1
    finally:
        httpd.shutdown()
    return answered


def random_partition(partition: str, rows: list[dict], count: int, output: str) -> str:
    """A copy of the partition whose review list is `count` inputs drawn at random."""
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(partition, output)
    for name in os.listdir(output):
        if name.startswith("review-"):
            os.remove(os.path.join(output, name))
    sample = random.Random(0).sample(rows, min(count, len(rows)))
    with open(os.path.join(output, "review-00000-of-00001.jsonl"), "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in sample)
    return output


# --- The figures. -----------------------------------------------------------------------


def held_out_figures(rows: list[dict], truth: dict) -> dict:
    right = [row["digit"] == truth[os.path.abspath(row["key"])] for row in rows]
    accepted = [row["status"] == "accepted" for row in rows]
    return {"accuracy": float(np.mean(right)), "accepted_share": float(np.mean(accepted))}


def mnist_half_figures(model: str, pixels: np.ndarray, labels: np.ndarray) -> dict:
    """MNIST's untouched test half through the scorer's predictor."""
    from model import screening
    from model.serving import Predictor

    predicted = Predictor(model).predict(pixels)
    return {
        "accuracy": float((predicted["digit"] == labels).mean()),
        "accepted_share": float((predicted["status"] == screening.ACCEPTED).mean()),
    }


def train(data: str, output: str, recipe: str, epochs: int | None) -> None:
    if not os.path.exists(os.path.join(output, "metrics.json")):
        extra = ["--epochs", str(epochs)] if epochs else []
        job("jobs.train", "--data", data, "--output", output, "--recipe", recipe, *extra)


def run_recipe(args, recipe: str, work: str, truth: dict, mnist_half) -> dict:
    """Before -> the night's review queue answered (and a random sample) -> after."""
    folder = os.path.join(work, recipe)
    before = os.path.join(folder, "model-before")
    train(args.data, before, recipe, args.epochs)
    night = os.path.join(folder, "night")
    rows = score(before, os.path.join(work, "in-house", "night"), night)
    result = {"before": figures(before, work, folder, "before", truth, mnist_half)}
    labels = os.path.join(folder, "review", "inhouse")
    answered = answer_queue(night, labels, truth, args.answers)
    sample = random_partition(night, rows, answered, os.path.join(folder, "random-night"))
    random_labels = os.path.join(folder, "random", "inhouse")
    answer_queue(sample, random_labels, truth, answered)
    result["answers"] = answered
    result["night_waiting"] = sum(row["status"] != "accepted" for row in rows)
    for name, answers in (("after_review", labels), ("after_random", random_labels)):
        data = os.path.join(folder, f"data-{name}")
        if not os.path.exists(os.path.join(data, "manifest.json")):
            job("jobs.preprocess", "--source", args.source, "--output", data,
                "--labelled", answers)  # fmt: skip
        model = os.path.join(folder, f"model-{name}")
        train(data, model, recipe, args.epochs)
        report = os.path.join(folder, f"report-{name}")
        if not os.path.exists(os.path.join(report, "evaluation.json")):
            job("jobs.evaluate", "--data", data, "--model", model, "--output", report,
                "--baseline", before, "--suite-size", "500", "--suite-per-kind", "50")  # fmt: skip
        result[name] = figures(model, work, folder, name, truth, mnist_half)
    return result


def figures(model: str, work: str, folder: str, name: str, truth: dict, mnist_half) -> dict:
    held_out = score(model, os.path.join(work, "in-house", "held_out"),
                     os.path.join(folder, f"held-out-{name}"))  # fmt: skip
    return {
        "in_house_held_out": held_out_figures(held_out, truth),
        "mnist_untouched_half": mnist_half_figures(model, *mnist_half),
    }


def report(recipe: str, r: dict) -> None:
    b = r["before"]
    print(f"{recipe}: {r['answers']} answers ({r['night_waiting']} of the night waited for review)")
    for part in ("in_house_held_out", "mnist_untouched_half"):
        for figure in ("accuracy", "accepted_share"):
            cells = " -> ".join(
                f"{r[when][part][figure]:.2%} ({when.replace('_', ' ')})"
                for when in ("before", "after_review", "after_random")
            )
            print(f"  {part:22s} {figure:15s} {cells}")
    gap = b["mnist_untouched_half"]["accuracy"] - b["in_house_held_out"]["accuracy"]
    rise = r["after_review"]["in_house_held_out"]["accuracy"] - b["in_house_held_out"]["accuracy"]
    print(f"  in-house accuracy rose {rise:.2%} of a {gap:.2%} gap to MNIST ({rise / gap:.0%})"
          if gap > 0 else "  no gap to MNIST")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data", required=True, help="MNIST preprocessed (digits preprocess)")
    parser.add_argument("--source", default=os.environ.get("MNIST_DIR"),
                        help="the raw MNIST files (to add the answers to)")  # fmt: skip
    parser.add_argument("--work", default="out/bench/loop", help="where everything goes")
    parser.add_argument("--recipes", default="seed,strong")
    parser.add_argument("--epochs", type=int, help="default: each recipe's own")
    parser.add_argument("--answers", type=int, default=1000, help="at most this many answers")
    parser.add_argument("--night", type=int, default=3000, help="in-house digits in the night")
    parser.add_argument("--held-out", type=int, default=2000, help="in-house digits held out")
    args = parser.parse_args(argv)
    if not args.source:
        parser.error("--source DIR (the four MNIST files) or MNIST_DIR is needed")
    if args.night + args.held_out > MNIST_HALF:
        parser.error(f"--night + --held-out must be at most {MNIST_HALF}")
    from model import data

    pixels, labels = data.split_digits(args.data, "test")
    truth_path = os.path.join(args.work, "in-house", "truth.json")
    if not os.path.exists(truth_path):
        truth = make_in_house(pixels, labels, os.path.join(args.work, "in-house"), args.night,
                              args.held_out)  # fmt: skip
        with open(truth_path, "w") as handle:
            json.dump(truth, handle)
    with open(truth_path) as handle:
        truth = json.load(handle)
    mnist_half = (pixels[MNIST_HALF:], labels[MNIST_HALF:])
    results = {}
    for recipe in args.recipes.split(","):
        results[recipe] = run_recipe(args, recipe, args.work, truth, mnist_half)
        report(recipe, results[recipe])
    save("loop", {"config": vars(args), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
