"""Installs the digits batch system: the `common`, `pipeline`, `model` and `jobs` packages.

The same file is what `--setup_file ./setup.py` hands to Dataflow workers, so
everything a worker imports must be listed in `install_requires`.
Exact, tested versions are pinned in requirements.lock (`make setup` uses it).
"""

from setuptools import find_packages, setup

setup(
    name="digits",
    version="0.1.0",
    description="Batch handwritten-digit recognition on MNIST: Beam preprocessing, "
    "tf.data training, Beam batch scoring.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(
        include=["common", "common.*", "pipeline", "pipeline.*", "model", "model.*", "jobs", "jobs.*"]
    ),
    install_requires=[
        "apache-beam>=2.77,<2.78",
        "google-crc32c>=1.5",  # fast TFRecord checksums for Beam's TFRecord code
        "tensorflow>=2.21,<2.22",
        "tensorboard>=2.21,<2.22",  # Keras' TensorBoard callback (no longer pulled in by TF)
        "tensorflow-datasets>=4.9.10,<4.10",
        "numpy>=1.26,<3",
        "pillow>=11",
        "matplotlib>=3.9",
    ],
    extras_require={
        "test": ["pytest>=8", "ruff>=0.15"],
        "gcp": ["apache-beam[gcp]>=2.77,<2.78"],
    },
    entry_points={"console_scripts": ["digits=jobs.cli:main"]},
)
