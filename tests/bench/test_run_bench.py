"""make bench-run runs the baseline commit from a temporary folder, on the same MNIST files."""

from __future__ import annotations

from bench import run_bench
from pipeline import sources
from tests.fakes import write_tiny_mnist


def test_the_baseline_reads_the_mnist_files_beside_this_checkout(tmp_path, monkeypatch):
    # `python -m bench.run_bench` run by hand, without make's MNIST_DIR, in a checkout
    # with the MNIST files beside it (../shared/data/mnist, as the Makefile looks).
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(run_bench, "REPO", str(tmp_path / "main"))
    beside = write_tiny_mnist(tmp_path / "shared" / "data" / "mnist")
    baseline = tmp_path / "work" / "baseline"  # where the baseline's tree is unpacked
    env = run_bench.environment(str(baseline))
    assert env["PYTHONPATH"] == str(baseline)
    assert env["MNIST_DIR"] == str(beside)
    monkeypatch.setenv("MNIST_DIR", env["MNIST_DIR"])
    assert sources.locate(None) == str(beside)  # all four files found, nothing downloaded


def test_a_mnist_dir_given_is_the_one_both_versions_read(tmp_path, monkeypatch):
    given = write_tiny_mnist(tmp_path / "elsewhere")
    monkeypatch.setenv("MNIST_DIR", str(given))
    monkeypatch.setattr(run_bench, "REPO", str(tmp_path / "main"))
    assert run_bench.environment(str(tmp_path / "baseline"))["MNIST_DIR"] == str(given)
