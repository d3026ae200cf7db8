"""Installs the digits batch system: the `common`, `pipeline`, `model`, `training`,
`evaluation`, `scoring`, `monitoring`, `review` and `jobs` packages.

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
        include=[
            "common",
            "common.*",
            "pipeline",
            "pipeline.*",
            "model",
            "model.*",
            "training",
            "training.*",
            "evaluation",
            "evaluation.*",
            "scoring",
            "scoring.*",
            "monitoring",
            "monitoring.*",
            "review",
            "review.*",
            "jobs",
            "jobs.*",
        ]
    ),
    install_requires=[
        # [gcp]: gs:// paths and Dataflow submission work without another install step.
        "apache-beam[gcp]>=2.77,<2.78",
        "google-crc32c>=1.5",  # fast TFRecord checksums for Beam's TFRecord code
        "tensorflow>=2.21,<2.22",
        "tensorboard>=2.21,<2.22",  # Keras' TensorBoard callback (no longer pulled in by TF)
        "tensorflow-datasets>=4.9.10,<4.10",
        "numpy>=1.26,<3",
        "pillow>=11",
        "matplotlib>=3.9",
    ],
    extras_require={
        # gcp-storage-emulator: a real GCS server on 127.0.0.1 for the tests and for
        # trying the gs:// paths without a cloud account (README, "On Dataflow").
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.8",
            "ruff>=0.15",
            "gcp-storage-emulator>=2026.7",
            # the review page's browser test drives Debian's chromium (.ci/run installs it)
            "selenium>=4.45",
        ],
    },
    package_data={"review": ["static/*"]},  # the review page ships with the package
    entry_points={"console_scripts": ["digits=jobs.cli:main"]},
)
