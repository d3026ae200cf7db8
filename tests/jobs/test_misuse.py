"""The jobs under misuse, as a new user really types them: folders they do not own,
arguments they mistype, shell-expanded globs, rotated photos, links, rewritten files,
odd dates, two runs of a night at once, storage that is a file or out of reach, models
of another shape, damaged shards. Every case stops with a plain message, or is scored
right; nothing a user owns is touched. Job behaviour only: the tiny model's predictions
are never asserted on."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import errors, files, ownership, schema, tfrecord
from jobs import promote, score
from model import images
from monitoring import nights as drift_check
from scoring import inputs, partition
from scoring.transforms import CSV_HEADER
from tests.conftest import REPO, free_port
from tests.fakes import digit_like_images, write_tfrecord

DATE = "2026-11-25"


def _score(model, pattern, output, *extra, date=DATE) -> int:
    argv = ["--model", str(model), "--input", str(pattern), "--output", str(output)]
    argv += ["--date", date] if date else []
    return score.main([*argv, "--max-error-rate", "1", "--drift-alarm", "off", *map(str, extra)])


def _pngs(directory: Path, count: int = 4, start: int = 0) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    pixels, _ = digit_like_images(start + count, seed=3)
    paths = []
    for i in range(start, start + count):
        paths.append(directory / f"{i:03d}.png")
        Image.fromarray(pixels[i]).save(paths[-1])
    return paths


def _predictions(folder: Path) -> list[dict]:
    rows = []
    for shard in sorted(folder.glob("predictions-*-of-*.jsonl")):
        rows += [json.loads(line) for line in shard.read_text().splitlines() if line]
    return rows


def _users_files(folder: Path) -> dict[str, str]:
    """A user's document and a user's image in `folder`; returns {name: sha256}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("\\documentclass{article} chapter 3, no backup")
    Image.fromarray(digit_like_images(1, seed=9)[0][0]).save(folder / "holiday.png")
    return _digests(folder, ["thesis.tex", "holiday.png"])


def _digests(folder: Path, names) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


# --- 1. A job deletes only what it wrote. -----------------------------------------------------


def test_undated_score_into_a_folder_with_a_users_files_is_refused(tiny_model, tmp_path, capsys):
    folder = tmp_path / "work"
    kept = _users_files(folder)
    _pngs(folder / "scans")
    assert _score(tiny_model, folder / "scans" / "*.png", folder, date=None) == 2
    err = capsys.readouterr().err
    assert f"--output {folder}" in err and "thesis.tex" in err and "--date" in err
    assert _digests(folder, kept) == kept
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.png", "scans", "thesis.tex"]


def test_scoring_into_the_input_folder_never_deletes_the_inputs(tiny_model, tmp_path):
    scans = _pngs(tmp_path / "scans")
    before = _digests(tmp_path / "scans", [p.name for p in scans])
    assert _score(tiny_model, tmp_path / "scans" / "*.png", tmp_path / "scans", date=None) == 2
    assert _digests(tmp_path / "scans", before) == before


def test_a_dated_partition_holding_a_users_file_is_refused(tiny_model, tmp_path, capsys):
    _pngs(tmp_path / "in")
    out = tmp_path / "scores"
    kept = _users_files(out / f"dt={DATE}")
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert _digests(out / f"dt={DATE}", kept) == kept
    assert not (out / f"dt={DATE}" / schema.SUCCESS_FILE).exists()


def test_undated_rerun_replaces_its_own_outputs_and_keeps_the_dated_nights(tiny_model, tmp_path):
    _pngs(tmp_path / "in", 5)
    out = tmp_path / "scores"
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == 0  # a dated night first
    night = sorted(p.name for p in (out / f"dt={DATE}").iterdir())
    assert _score(tiny_model, tmp_path / "in" / "*.png", out, date=None) == 0
    assert _score(tiny_model, tmp_path / "in" / "*.png", out, "--force", date=None) == 0
    assert len(_predictions(out)) == 5
    assert sorted(p.name for p in (out / f"dt={DATE}").iterdir()) == night
    assert (out / schema.SUCCESS_FILE).exists() and not (out / partition.STAGING).exists()


def test_preprocess_never_replaces_a_dataset_folder_holding_a_users_files(tiny_mnist, tmp_path):
    from jobs import preprocess

    out = tmp_path / "data"
    argv = ["--source", str(tiny_mnist), "--output", str(out), "--no-digest-check"]
    argv += ["--validation-size", "10"]
    assert preprocess.main(argv) == 0
    kept = _users_files(out)
    manifest = (out / schema.MANIFEST_FILE).read_bytes()
    assert preprocess.main(argv) == 2
    assert _digests(out, kept) == kept and (out / schema.MANIFEST_FILE).read_bytes() == manifest
    for name in kept:
        (out / name).unlink()
    assert preprocess.main(argv) == 0  # its own folder alone: replaced


def test_train_refuses_a_folder_holding_a_users_files(tiny_dataset, tmp_path, capsys):
    from jobs import train

    kept = _users_files(tmp_path / "model")
    argv = ["--data", str(tiny_dataset), "--output", str(tmp_path / "model"), "--epochs", "1"]
    assert train.main(argv) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert _digests(tmp_path / "model", kept) == kept
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(kept)


def test_evaluate_refuses_a_report_folder_holding_a_users_files(
    tiny_model, tiny_dataset, tmp_path, capsys
):
    from jobs import evaluate

    kept = _users_files(tmp_path / "report")
    argv = ["--data", str(tiny_dataset), "--model", str(tiny_model)]
    assert evaluate.main([*argv, "--output", str(tmp_path / "report")]) == 2
    assert "--output" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(kept)
    assert _digests(tmp_path / "report", kept) == kept


def test_promote_never_deletes_a_users_files_in_the_target(tiny_model, tmp_path, capsys):
    target = tmp_path / "promoted"
    kept = _users_files(target)
    assert promote.main(["--candidate", str(tiny_model), "--to", str(target)]) == 2
    assert "--to" in capsys.readouterr().err and _digests(target, kept) == kept
    for name in kept:
        (target / name).unlink()
    assert promote.main(["--candidate", str(tiny_model), "--to", str(target)]) == 0
    assert promote.main(["--candidate", str(tiny_model), "--to", str(target)]) == 0


def test_undated_score_on_a_bucket_never_deletes_a_users_object(tiny_model, tmp_path, bucket):
    _pngs(tmp_path / "in")
    out = f"{bucket}/shared"
    files.write_bytes(f"{out}/budget.xlsx", b"PK\x03\x04 quarterly figures")
    assert _score(tiny_model, tmp_path / "in" / "*.png", out, date=None) == 2
    assert files.list_tree(out) == ["budget.xlsx"]
    fresh = f"{bucket}/scores"
    assert _score(tiny_model, tmp_path / "in" / "*.png", fresh, date=None) == 0
    assert _score(tiny_model, tmp_path / "in" / "*.png", fresh, "--force", date=None) == 0
    assert all(ownership.is_own(name, ownership.SCORE_PARTITION) for name in files.list_tree(fresh))


@pytest.mark.parametrize("job", ["preprocess", "train", "promote"])
def test_jobs_on_a_bucket_never_touch_a_users_object(
    job, tiny_mnist, tiny_dataset, tiny_model, bucket
):
    folder = f"{bucket}/shared"
    files.write_bytes(f"{folder}/budget.xlsx", b"PK\x03\x04 quarterly figures")
    files.write_bytes(f"{folder}/{ownership.DATASET_MARKER}", b"{}")  # looks like ours, too
    if job == "preprocess":
        from jobs import preprocess

        code = preprocess.main(
            ["--source", str(tiny_mnist), "--output", folder, "--no-digest-check"]
        )
    elif job == "train":
        from jobs import train

        code = train.main(["--data", str(tiny_dataset), "--output", folder, "--epochs", "1"])
    else:
        code = promote.main(["--candidate", str(tiny_model), "--to", folder])
    assert code == 2
    assert files.list_tree(folder) == [ownership.DATASET_MARKER, "budget.xlsx"]
    assert files.read_bytes(f"{folder}/budget.xlsx") == b"PK\x03\x04 quarterly figures"


# --- 2. Every argument is accounted for. ------------------------------------------------------


def test_a_misspelt_option_stops_the_job_naming_the_likely_one(tiny_model, tmp_path, capsys):
    _pngs(tmp_path / "in")
    with pytest.raises(SystemExit) as stopped:
        _score(tiny_model, tmp_path / "in" / "*.png", tmp_path / "out", "--formt", "csv")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--formt" in err and "did you mean --format?" in err
    assert not (tmp_path / "out").exists()  # before any work


def test_a_shell_expanded_glob_says_so_and_shows_the_quoted_form(tiny_model, tmp_path, capsys):
    scans = _pngs(tmp_path / "scans", 6)
    argv = ["--model", str(tiny_model), "--output", str(tmp_path / "out"), "--input"]
    with pytest.raises(SystemExit) as stopped:
        score.main([*argv, *map(str, scans)])  # what `--input scans/*.png` becomes
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "shell expanded an unquoted glob" in err
    assert f"--input '{tmp_path / 'scans' / '*.png'}'" in err
    assert not (tmp_path / "out").exists()


def test_beam_options_still_pass_and_unknown_ones_stop_preprocess(tiny_mnist, tmp_path, capsys):
    from jobs import preprocess

    argv = ["--source", str(tiny_mnist), "--output", str(tmp_path / "d"), "--no-digest-check"]
    argv += ["--validation-size", "10"]
    with pytest.raises(SystemExit) as stopped:
        preprocess.main([*argv, "--num-shard", "2"])  # abbreviations are not taken either
    assert stopped.value.code == 2 and "did you mean --num-shards?" in capsys.readouterr().err
    assert preprocess.main([*argv, "--runner", "DirectRunner", "--direct_num_workers=1"]) == 0


# --- 3. Inputs as a person sees them. ---------------------------------------------------------


def _oriented(pixels: np.ndarray, orientation: int, fmt: str) -> bytes:
    """`pixels` stored as a camera would with that EXIF orientation: the stored pixels are
    such that a viewer applying the tag shows `pixels` upright."""
    stored = {
        1: lambda a: a,
        2: np.fliplr,
        3: lambda a: np.rot90(a, 2),
        4: np.flipud,
        5: lambda a: a.T,
        6: lambda a: np.rot90(a, 1),  # shown after turning 90 degrees clockwise
        7: lambda a: np.rot90(a, 2).T,
        8: lambda a: np.rot90(a, 3),
    }[orientation](pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(stored)).save(buffer, fmt, exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def test_exif_orientation_is_applied_alike_by_the_scorer_and_the_saved_model(tiny_model):
    import tensorflow as tf

    from model import digit_image

    upright = np.zeros((36, 24), np.uint8)
    upright[4:14, 3:8] = 255  # a tall bar at the top left and a block at the bottom right
    upright[24:32, 14:21] = 200
    for fmt in ("PNG", "JPEG"):
        for orientation in range(1, 9):
            data = _oriented(upright, orientation, fmt)
            seen = images.decode(data)[..., 0]
            tolerance = 0 if fmt == "PNG" else 24  # JPEG's loss, differently decoded
            assert seen.shape == upright.shape, (fmt, orientation)
            assert np.abs(seen.astype(int) - upright).max() <= tolerance, (fmt, orientation)
            found = digit_image.exif_orientation(tf.constant(data))
            assert int(found) == orientation
    saved = tf.saved_model.load(str(tiny_model / schema.SAVED_MODEL_DIR))
    digits = digit_like_images(8, seed=5)[0]
    encoded = [_oriented(d, o, "PNG") for d, o in zip(digits, range(1, 9), strict=True)]
    served = saved.signatures["predict_encoded"](image_bytes=tf.constant(encoded))
    from model.serving import Predictor

    scorer = Predictor(str(tiny_model)).predict(
        np.stack([images.to_mnist_pixels(images.decode(d)) for d in encoded])
    )
    assert np.allclose(served["probabilities"].numpy(), scorer["probabilities"], atol=1e-5)
    upright_scores = Predictor(str(tiny_model)).predict(digits)["probabilities"]
    assert np.allclose(scorer["probabilities"], upright_scores, atol=1e-5)


def test_links_never_loop_and_each_file_is_scored_once(tiny_model, tmp_path):
    night = tmp_path / "in" / "2026-11-05"
    _pngs(night, 2)
    _pngs(tmp_path / "elsewhere", 1, start=7)
    (night / "self").symlink_to(".")
    (night / "self_too").symlink_to(".")
    (tmp_path / "in" / "latest").symlink_to("2026-11-05")
    (night / "again.png").symlink_to("000.png")
    (night / "outside").symlink_to(tmp_path / "elsewhere")
    (night / "outside_again").symlink_to(tmp_path / "elsewhere")
    listed = sorted(Path(p).name for p, _, _ in inputs.iter_matches(str(tmp_path / "in/**/*.png")))
    assert listed == ["000.png", "001.png", "007.png"]
    assert _score(tiny_model, tmp_path / "in" / "**" / "*.png", tmp_path / "out") == 0
    assert len(_predictions(tmp_path / "out" / f"dt={DATE}")) == 3


def test_a_file_rewritten_with_the_same_size_is_rescored(tiny_model, tmp_path, capsys):
    """A scan corrected in place (here flipped) with the same size: stored without
    compression, a PNG's size depends on its dimensions alone."""
    [path] = _pngs(tmp_path / "in", 1)
    pixels = np.asarray(Image.open(path))
    Image.fromarray(pixels).save(path, "PNG", compress_level=0)
    assert _score(tiny_model, path, tmp_path / "out") == 0
    first = _predictions(tmp_path / "out" / f"dt={DATE}")[0]["input_sha256"]
    data = path.read_bytes()
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[::-1])).save(buffer, "PNG", compress_level=0)
    rewritten = buffer.getvalue()
    assert len(rewritten) == len(data) and rewritten != data
    stat = path.stat()
    path.write_bytes(rewritten)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    capsys.readouterr()
    assert _score(tiny_model, path, tmp_path / "out") == 0
    assert "already scored" not in capsys.readouterr().out
    second = _predictions(tmp_path / "out" / f"dt={DATE}")[0]["input_sha256"]
    assert second == hashlib.sha256(rewritten).hexdigest() != first


# --- 4. One night at a time. ------------------------------------------------------------------


def test_a_second_run_of_a_night_stops_at_once_with_its_own_status(tiny_model, tmp_path, capsys):
    _pngs(tmp_path / "in")
    out = tmp_path / "out"
    target = partition.partition_dir(str(out), DATE)
    with partition.night_lock(str(out), target, "the-first-run"):
        assert _score(tiny_model, tmp_path / "in" / "*.png", out) == errors.BUSY
    err = capsys.readouterr().err
    assert "the-first-run" in err and "being scored right now" in err
    assert not (out / f"dt={DATE}").exists()
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == 0  # the lock went with it


def test_a_killed_runs_lock_holds_nobody_up(tiny_model, tmp_path):
    """A run killed while it holds the lock: the kernel drops the flock with the process."""
    _pngs(tmp_path / "in")
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from scoring import partition\n"
         "with partition.night_lock(sys.argv[1], sys.argv[2], 'killed'):\n"
         "    print('held', flush=True); time.sleep(600)",
         str(out), partition.partition_dir(str(out), DATE)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == errors.BUSY
    holder.kill()
    holder.wait()
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == 0


def test_on_a_bucket_a_live_marker_stops_a_second_run_and_a_dead_one_is_taken_over(
    tiny_model, tmp_path, bucket
):
    _pngs(tmp_path / "in")
    out = f"{bucket}/scores"
    target = partition.partition_dir(out, DATE)
    with partition.night_lock(out, target, "live"):
        assert files.list_tree(f"{out}/{partition.STAGING}") == [f"dt={DATE}.lock"]
        assert _score(tiny_model, tmp_path / "in" / "*.png", out) == errors.BUSY
    dead = {"run_id": "killed", "heartbeat": 0}
    files.write_bytes(f"{out}/{partition.STAGING}/dt={DATE}.lock", json.dumps(dead).encode())
    assert _score(tiny_model, tmp_path / "in" / "*.png", out) == 0
    assert files.exists(f"{target}/{schema.SUCCESS_FILE}")
    assert not files.list_tree(f"{out}/{partition.STAGING}")


# --- 5. Plain errors everywhere. --------------------------------------------------------------


@pytest.mark.parametrize("date", ["2026-2-3", "03/02/2026", "2026-02-30", "tomorrow"])
def test_a_date_not_written_yyyy_mm_dd_is_refused(tiny_model, tmp_path, capsys, date):
    _pngs(tmp_path / "in")
    assert _score(tiny_model, tmp_path / "in" / "*.png", tmp_path / "out", date=date) == 2
    err = capsys.readouterr().err
    assert f"--date {date!r}" in err and "YYYY-MM-DD" in err
    if date == "2026-2-3":
        assert "--date 2026-02-03" in err
    assert not (tmp_path / "out").exists()


def test_today_and_yesterday_are_written_as_dates():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", score.parse_date("today"))
    assert score.parse_date("yesterday") < score.parse_date("today")


def test_an_output_that_is_a_file_is_one_plain_line(tiny_model, tmp_path):
    _pngs(tmp_path / "in")
    (tmp_path / "out").write_text("not a folder")
    run = subprocess.run(
        [sys.executable, "-m", "jobs.score", "--model", str(tiny_model), "--input",
         str(tmp_path / "in" / "*.png"), "--output", str(tmp_path / "out"), "--date", DATE],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"{tmp_path / 'out'}" in run.stderr and "give a folder path" in run.stderr


def test_local_storage_problems_read_as_one_line_with_the_fix():
    with pytest.raises(OSError) as full, open("/dev/full", "w") as handle:
        handle.write("x" * 100_000)
        handle.flush()
    assert "the disk is full" in files.storage_problem(full.value)
    try:
        raise RuntimeError("a sink failed") from full.value  # as a Beam stage reports it
    except RuntimeError as wrapped:
        assert "the disk is full" in files.storage_problem(wrapped)
    read_only = OSError(30, os.strerror(30), "/mnt/ro/scores")
    assert files.storage_problem(read_only).startswith("/mnt/ro/scores: a read-only file system")
    denied = PermissionError(13, os.strerror(13), "/srv/scores")
    assert "permission denied" in files.storage_problem(denied)


def test_an_unreachable_bucket_fails_within_the_wait_in_one_line(tiny_model, tmp_path):
    _pngs(tmp_path / "in")
    env = {**os.environ, files.EMULATOR_VARIABLE: f"http://127.0.0.1:{free_port()}"}
    env["DIGITS_STORAGE_TIMEOUT"] = "2"
    run = subprocess.run(
        [sys.executable, "-m", "jobs.score", "--model", str(tiny_model), "--input",
         str(tmp_path / "in" / "*.png"), "--output", "gs://nowhere/scores", "--date", DATE],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "no answer from Google Cloud Storage" in run.stderr


def test_evaluate_names_a_model_that_is_not_a_digit_classifier(tiny_dataset, tmp_path, capsys):
    import keras

    from jobs import evaluate

    folder = tmp_path / "five"
    folder.mkdir()
    five = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(5, activation="softmax")])  # fmt: skip
    five.save(folder / schema.KERAS_FILE)
    (folder / schema.METRICS_FILE).write_text(json.dumps({"model": "five"}))
    argv = ["--data", str(tiny_dataset), "--model", str(folder)]
    assert evaluate.main([*argv, "--output", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "not a digit classifier" in err and "(None, 5)" in err


def test_csv_output_quotes_a_file_name_holding_a_newline(tiny_model, tmp_path):
    [plain] = _pngs(tmp_path / "in", 1)
    odd = tmp_path / "in" / 'scan\nof, "March".png'
    odd.write_bytes(plain.read_bytes())
    out = tmp_path / "out"
    assert _score(tiny_model, tmp_path / "in" / "*.png", out, "--format", "csv") == 0
    rows = []
    for shard in sorted((out / f"dt={DATE}").glob("predictions-*-of-*.csv")):
        with open(shard, newline="") as handle:
            rows += list(csv.reader(handle))[1:]
    assert sorted(row[0] for row in rows) == sorted([str(plain), str(odd)])
    assert all(len(row) == len(CSV_HEADER.split(",")) for row in rows)


def test_a_damaged_shard_keeps_the_records_before_the_damage(tiny_model, tmp_path):
    pixels, labels = digit_like_images(10, seed=4)
    shard = tmp_path / "night.tfrecord"
    write_tfrecord(shard, pixels, labels)
    good = shard.read_bytes()
    sizes = [12 + len(r) + 4 for r in tfrecord.read_records(io.BytesIO(good))]
    damaged = bytearray(good)
    at = sum(sizes[:7]) + 20  # inside the eighth record's data
    damaged[at] ^= 0xFF
    shard.write_bytes(bytes(damaged))
    out = tmp_path / "out"
    assert _score(tiny_model, shard, out, "--batch-size", "4") == 0
    part = out / f"dt={DATE}"
    assert len(_predictions(part)) == 7
    [error] = [
        json.loads(line) for s in part.glob("errors-*") for line in s.read_text().splitlines()
    ]
    assert error["key"] == f"{shard}#7+"
    assert "the 7 records before the damage were scored" in error["error"]
    assert f"record 7 at byte {sum(sizes[:7])}" in error["error"]
    summary = json.loads((part / schema.SUMMARY_FILE).read_text())
    assert summary["scored"] == 7 and summary["failed"] == 1


# --- 6. An alarm that means something (its false-alarm rate: tests/test_drift.py). ------------


def _night(out: Path, date: str, ink: list[int], alarm: bool) -> None:
    folder = out / f"dt={date}"
    folder.mkdir(parents=True)
    summary = {"drift": {"ink": ink}, "drift_alarm": {"alarm": alarm, "breaches": []}}
    (folder / schema.SUMMARY_FILE).write_text(json.dumps(summary))
    (folder / schema.SUCCESS_FILE).write_text("{}")


def test_an_alarmed_night_stays_out_of_the_baseline_until_a_person_accepts_it(tmp_path):
    out = tmp_path / "scores"
    _night(out, "2026-11-01", [100, 0], alarm=False)
    _night(out, "2026-11-02", [0, 100], alarm=True)
    _night(out, "2026-11-03", [100, 0], alarm=False)
    (out / "dt=2026-11-4").mkdir()  # not a partition of ours: never compared
    nights = drift_check.trailing_nights(str(out), "2026-11-05", 7)
    assert nights["nights"] == ["2026-11-01", "2026-11-03"]
    assert nights["left_out"] == ["2026-11-02"] and nights["histograms"] == {"ink": [200, 0]}
    (out / "dt=2026-11-02" / ownership.DRIFT_ACCEPTED_FILE).write_text("seasonal forms\n")
    nights = drift_check.trailing_nights(str(out), "2026-11-05", 2)
    assert nights["nights"] == ["2026-11-02", "2026-11-03"] and nights["left_out"] == []


# --- 7. The exit statuses, in one table. ------------------------------------------------------


def test_the_readme_exit_status_table_is_what_the_jobs_return():
    text = (REPO / "docs" / "operations.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|", text, flags=re.M))
    assert {int(k) for k in table} == {0, 1, 2, 3, 4, 5, 75}
    assert int(next(k for k, v in table.items() if "another run" in v)) == errors.BUSY
    assert int(next(k for k, v in table.items() if "failed" in v)) == errors.TOO_MANY_ERRORS
    assert int(next(k for k, v in table.items() if "drift" in v)) == errors.DRIFT
    assert int(next(k for k, v in table.items() if "not blessed" in v)) == errors.NOT_BLESSED
    wrapper = (REPO / "deploy" / "cron" / "digits-nightly.sh").read_text()
    assert f"exit {errors.BUSY}" in wrapper
