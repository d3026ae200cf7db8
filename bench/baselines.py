"""Baselines the preprocessing pipeline is measured against (bench only, not product code).

python -m bench.baselines tfds --source DIR --output DIR
python -m bench.baselines per-image --source DIR --output DIR
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import urllib.parse

from pipeline import idx


def tfds_builder(source: str, output: str) -> None:
    """TFDS's own MNIST builder, its downloads answered by the local files."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification.mnist import MNIST

    class _LocalFiles:
        """Stands in for the download manager: gunzips the local files instead."""

        def download_and_extract(self, urls):
            paths = {}
            for key, url in urls.items():
                name = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1]
                target = os.path.join(output, "extracted", name[: -len(".gz")])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(gzip.decompress(open(os.path.join(source, name), "rb").read()))
                paths[key] = target
            return paths

    class LocalMNIST(MNIST, skip_registration=True):
        name = "mnist"

        def _split_generators(self, dl_manager):
            return super()._split_generators(_LocalFiles())

    builder = LocalMNIST(data_dir=output)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )


def per_image_pipeline(source: str, output: str) -> None:
    """The straightforward pipeline: one Beam element per image, tf.train.Example in Python."""
    import apache_beam as beam
    import tensorflow as tf

    def read(pair):
        split, images_name, labels_name = pair
        images = idx.parse_images(images_name, idx.read_bytes(os.path.join(source, images_name)))
        labels = idx.parse_labels(labels_name, idx.read_bytes(os.path.join(source, labels_name)))
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield split, i, image, int(label)

    def to_example(element):
        split, i, image, label = element
        feature = {
            "image": tf.train.Feature(float_list=tf.train.FloatList(value=(image / 255.0).ravel())),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"{split}-{i}".encode()])),
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    pairs = [
        ("train", *[f.name for f in idx.MNIST_FILES["train"]]),
        ("test", *[f.name for f in idx.MNIST_FILES["test"]]),
    ]
    with beam.Pipeline() as p:
        examples = p | beam.Create(pairs) | beam.FlatMap(read) | beam.Reshuffle()
        for split in ("train", "test"):
            (
                examples
                | f"Only[{split}]" >> beam.Filter(lambda e, s=split: e[0] == s)
                | f"ToExample[{split}]" >> beam.Map(to_example)
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    os.path.join(output, f"mnist-{split}.tfrecord"), num_shards=1
                )
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["tfds", "per-image"])
    parser.add_argument("--source", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    (tfds_builder if args.which == "tfds" else per_image_pipeline)(args.source, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
