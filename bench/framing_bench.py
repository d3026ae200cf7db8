"""How the scorer's normalisation reads digits on square grey pages, against a plain resize
to 28x28, in one run: what model.digit_image's framing rule (only resize a digit framed
as MNIST frames its digits, fit and ink every other) buys or costs.

    python -m bench.framing_bench --data out/data --model out/bench/recipes/robust-0

MNIST's test digits (--count, the first ones) as three kinds of page, none of them the
evaluation's judge alone:
- reduced to 6x6 ... 16x16 and scaled back up to 32x32 (evaluation.suites.low_resolution;
  the evaluation judges 8, 12 and 16);
- centred on a black 56x56 page at several sizes (the digit's side at 28x28: MNIST's is 20);
- drawn with a bolder pen (strokes 2 and 3 pixels wider at 28x28).
Printed per page kind: the model's accuracy through the normalisation and through a plain
resize, and the digits each reads right that the other reads wrong.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageFilter

from bench.common import save

SIDES = (6, 7, 8, 10, 12, 16)  # low resolution: the side a digit is reduced to
DIGIT_SIDES = (10, 12, 14, 22, 24)  # a digit's side at 28x28 on a 56x56 page
BOLDER = (2, 3)  # pixels added to the strokes at 28x28
PAGE = 56


def on_page(digits: np.ndarray, digit_side: int, bolder: int = 0) -> np.ndarray:
    """uint8 [n, 28, 28] -> [n, 56, 56]: each digit scaled so that MNIST's 20-pixel box
    becomes `digit_side` at 28x28, strokes `bolder` pixels wider there, centred, black."""
    size = round(PAGE * digit_side / 20)
    pages = []
    for digit in digits:
        image = Image.fromarray(digit).resize((size, size), Image.BICUBIC)
        if bolder:
            image = image.filter(ImageFilter.MaxFilter(2 * bolder + 1))
        canvas = Image.new("L", (max(PAGE, size),) * 2)
        canvas.paste(image, ((canvas.size[0] - size) // 2,) * 2)
        corner = (canvas.size[0] - PAGE) // 2
        pages.append(np.asarray(canvas.crop((corner, corner, corner + PAGE, corner + PAGE))))
    return np.stack(pages)


def page_kinds(digits: np.ndarray) -> dict:
    from evaluation import suites

    kinds = {f"reduced to {s}x{s}": suites.low_resolution(digits, s) for s in SIDES}
    kinds |= {f"{s} px a side on the page": on_page(digits, s) for s in DIGIT_SIDES}
    kinds |= {f"strokes {b} px bolder": on_page(digits, 20, b) for b in BOLDER}
    return kinds


def compare(predictor, pages: np.ndarray, labels: np.ndarray) -> dict:
    from evaluation import suites
    from model import images

    normalised = predictor.predict(images.normalise_all(list(pages[..., None])))["digit"]
    plain = predictor.predict(suites.plain_resize(pages))["digit"]
    right, plain_right = normalised == labels, plain == labels
    return {
        "normalised": float(right.mean()),
        "plain_resize": float(plain_right.mean()),
        "won": int((right & ~plain_right).sum()),
        "lost": int((plain_right & ~right).sum()),
    }


def first_test_digits(data_dir: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` test digits, uint8 [n, 28, 28], and their labels."""
    from model import data

    return data.split_digits(data_dir, "test", count)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--model", required=True, help="a model folder")
    parser.add_argument("--count", type=int, default=10_000, help="test digits (the first)")
    args = parser.parse_args(argv)
    from model import serving

    digits, labels = first_test_digits(args.data, args.count)
    predictor = serving.Predictor(args.model)
    print(f"{args.model} on {len(labels):,} test digits: normalised against a plain resize")
    results = {}
    for kind, pages in page_kinds(digits).items():
        results[kind] = r = compare(predictor, pages, labels)
        print(f"  {kind:>26}: normalised {r['normalised']:.2%}, plain resize "
              f"{r['plain_resize']:.2%} (won {r['won']}, lost {r['lost']})")  # fmt: skip
    save("framing", {"model": args.model, "digits": len(labels), "kinds": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
