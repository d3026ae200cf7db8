"""The evaluation stage: judges a trained model on the test split and writes the report
and the blessing; of the model folder it changes only blessing.json.

    results = evaluation.evaluate.run(EvaluateRun(data=..., model=..., output=...))

load -> predict test (and the promoted baseline, on the same images) -> metrics -> the
stored calibration measured on test (evaluation.calibration) -> the validation digits a
person should check (evaluation.label_review) -> robustness suites
(evaluation.robustness) -> the gate's blessing (evaluation.blessing) -> evaluation.json,
pictures, model card (evaluation.report).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import files, ownership
from common.progress import Steps
from evaluation import blessing, calibration, label_review, report, robustness
from evaluation.gate import GateConfig
from model import data, serving


@dataclass(frozen=True)
class Suites:
    """How large the robustness suites are, and their seed."""

    size: int = 2000  # test digits in the corruption, not-a-digit and scan suites
    # Images of each not-a-digit kind: at 1,000 a share near 95% is known to about 1.4
    # points (two standard errors); one model's share moved by up to 7.5 points from one
    # 200 images to the next (docs/experiments.md, 2026-12-05, evening).
    per_kind: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class EvaluateRun:
    data: str
    model: str
    output: str
    baseline: str | None = None  # the promoted model, to compare with
    suites: Suites = field(default_factory=Suites)
    gate: GateConfig = field(default_factory=GateConfig)


def run(job: EvaluateRun) -> dict:
    """See the module doc; returns evaluation.json's content."""
    steps = Steps("digits evaluate")
    claim_outputs(job)
    training = serving.training_metrics(job.model)
    model = serving.load_model(job.model)
    screen = serving.load_screen(job.model)  # fitted by digits train for this model file
    steps.start("predicting the test split")
    with data.local_dataset(job.data) as dataset:
        shape = screen.shape_check or None
        verify = not dataset.verified
        test = data.predict_split(model, dataset.path, verify=verify, shape_weights=shape)
        baseline = None
        if blessing.baseline_exists(job.baseline):  # the promoted model, same images
            steps.start("predicting the test split with the baseline model")
            baseline = data.predict_split(serving.load_model(job.baseline), dataset.path)
        steps.start("predicting the validation split (the labels a person should check)")
        validation = data.predict_split(model, dataset.path, "validation")
    results = report.classification_metrics(test.labels, test.probabilities)
    stored = files.read_json(serving.calibration_path(job.model))
    results["calibration"] = calibration.judge(test, stored)
    results["by_source"] = calibration.by_source(test, stored)
    results["label_review"] = label_review.candidates(
        validation, screen.temperature, screen.ranking
    )
    steps.start("robustness suites (corruptions, not-a-digit inputs, scans)")
    predictor = serving.Predictor.of(model, screen)  # the scorer's, on the model loaded once
    results["robustness"] = robustness.evaluate(predictor, test, job.suites, steps)
    results["blessing"] = blessing.bless(job.gate, job.model, job.baseline, results, test, baseline)
    steps.start("writing the report")
    report.write_report(job.output, model, training, results, test, dataset.manifest, validation)
    return results


def claim_outputs(job: EvaluateRun) -> None:
    """Refuses (exit 2) a report folder or model folder holding files it did not write."""
    files.check_reachable(job.output)
    fix = "Write the report into a new or empty --output folder."
    ownership.claim(job.output, ownership.REPORT, "digits evaluate", fix=fix)
    fix = "Keep your files outside the model folder: evaluate writes its blessing there."
    ownership.claim(job.model, ownership.MODEL, "digits evaluate", "--model", fix)
