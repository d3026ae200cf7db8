"""What folding the batch norms buys the scorer: each model's predictor (the network and the
input checks, what `digits score` runs on every batch) as served, batch norms folded into the
convolutions (model.cnn.for_inference), against the same model as trained, in one run.

    python -m bench.inference_bench --data out/data --model out/bench/recipes/strong-0 \
        --model out/bench/recipes/robust-0

MNIST's test digits in batches of 256, as the scorer batches them; the two predictors
alternate, and each figure is the median of --rounds. With two models or more, the last
lines give each one's throughput against the first one's, as trained and as served (what
`make bench-recipes`' scoring ratio is made of, without the decoding and Beam).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.common import save

BATCH = 256


def images_per_second(predictor, pixels: np.ndarray) -> float:
    started = time.perf_counter()
    for first in range(0, len(pixels), BATCH):
        predictor.predict(pixels[first : first + BATCH])
    return len(pixels) / (time.perf_counter() - started)


def compare(model: str, pixels: np.ndarray, rounds: int) -> dict:
    """The model's predictor as trained and as served: images per second, median of rounds."""
    from model import serving

    loaded, screen = serving.load_model(model), serving.load_screen(model)
    predictors = {
        "as_trained": serving.Predictor.of(loaded, screen, fold=False),
        "as_served": serving.Predictor.of(loaded, screen),
    }
    served = predictors["as_served"].predict(pixels)["probabilities"]
    trained = predictors["as_trained"].predict(pixels)["probabilities"]
    speeds = {name: [] for name in predictors}
    for i in range(rounds):
        for name in sorted(predictors, reverse=i % 2 == 1):
            speeds[name].append(images_per_second(predictors[name], pixels))
    result = {name: statistics.median(values) for name, values in speeds.items()}
    result["ratio"] = result["as_served"] / result["as_trained"]
    result["largest_difference"] = float(np.abs(served - trained).max())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--model", action="append", required=True, help="a model folder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from model import data

    pixels = data.split_pixels(args.data, "test")
    print(f"Predictor on {len(pixels):,} test digits, batches of {BATCH}, median of {args.rounds}")
    results = {}
    for model in args.model:
        results[model] = r = compare(model, pixels, args.rounds)
        print(f"  {model}: as trained {r['as_trained']:7,.0f} images/s, as served "
              f"{r['as_served']:7,.0f} images/s: {r['ratio']:.2f}x "
              f"(probabilities differ by at most {r['largest_difference']:.1e})")  # fmt: skip
    first = results[args.model[0]]
    for model in args.model[1:]:
        r = results[model]
        print(f"  {model} / {args.model[0]}: as trained "
              f"{r['as_trained'] / first['as_trained']:.3f}, as served "
              f"{r['as_served'] / first['as_served']:.3f}")  # fmt: skip
    save("inference", {"images": len(pixels), "batch": BATCH, "models": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
