"""scripts/train.py end to end on real LFW faces (aligned with MTCNN, cached), published as custom:<name>,
evaluated with evaluate.py, and a gallery reindexed onto a trained model; bad input refused clearly."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from model.model_card import card_dir, read_card
from model.zoo import ZOO, locate_weights
from services.config import Settings
from services.context import ServiceContext
from services.engine import build_pipeline
from services.registry.consistency import reindex
from services.registry.enrollment import ImageInput, enroll
from services.registry.galleries import get_gallery
from services.registry.persons import PersonInput
from services.search.identification import identify_image
from tests.integration.conftest import isolated_settings, run_python

PEOPLE = ("Colin_Powell", "Tony_Blair", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez", "Jean_Chretien")
Img = Callable[[str, int], Path]


def small_dataset(lfw: Path, dest: Path, per_person: int = 4) -> Path:
    """`<person>/<images>` of a few LFW people (links: the photos are never copied)."""
    for person in PEOPLE:
        (dest / person).mkdir(parents=True)
        for n in range(1, per_person + 1):
            name = f"{person}_{n:04d}.jpg"
            (dest / person / name).symlink_to(lfw / "images" / person / name)
    return dest


def pairs_csv(path: Path) -> Path:
    """Ten pairs in two folds over images not trained on (numbers 5-6 of each person)."""
    rows = []
    for i, person in enumerate(PEOPLE[:5]):
        other = PEOPLE[i + 1]
        rows.append((f"images/{person}/{person}_0005.jpg", f"images/{person}/{person}_0006.jpg", 1, i % 2))
        rows.append((f"images/{person}/{person}_0005.jpg", f"images/{other}/{other}_0005.jpg", 0, i % 2))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path_a", "path_b", "same", "fold"])
        writer.writerows(rows)
    return path


@pytest.mark.slow
def test_train_publish_and_evaluate_a_model_from_the_command_line(infra: Settings, lfw: Path, tmp_path: Path) -> None:
    settings = isolated_settings(infra, tmp_path)
    data = small_dataset(lfw, tmp_path / "people")
    (data / "Colin_Powell" / "broken.jpg").write_bytes(b"not a photo")
    models, run = tmp_path / "models", tmp_path / "run"
    dirs = os.pathsep.join(map(str, [models, *settings.model_dir]))
    args = ["scripts/train.py", "fit", "--data", str(data), "--run", str(run), "--init", "shipped"]
    args += ["--epochs", "1", "--batch-size", "8", "--lr", "0.001", "--val-fraction", "0.34", "--val-pairs", "20"]
    args += ["--backbone-lr-mult", "0.1", "--freeze-bn", "--publish", "tiny", "--model-dir", str(models)]
    fit = run_python(settings, args, FACEREG_MODEL_DIR=dirs)
    assert fit.returncode == 0, fit.stderr[-2000:]
    report = json.loads(fit.stdout.strip().splitlines()[-1])
    assert report["published"] == "custom:tiny" and report["best_epoch"] == 1

    recorded = json.loads((run / "data.json").read_text())
    assert recorded["unreadable"] == 1 and "Colin_Powell/broken.jpg" in recorded["unreadable_shown"]
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 2 and not set(split["val"]) & set(split["train"])
    card = read_card(card_dir(models, "tiny") / "card.json")
    assert card.base_model == "mobilefacenet" and card.training["onnx_parity_min_cosine"] >= 0.9999

    again = run_python(
        settings, ["scripts/train.py", "fit", "--run", str(run), "--resume", "--epochs", "2"], FACEREG_MODEL_DIR=dirs
    )
    assert again.returncode == 0, again.stderr[-2000:]
    with (run / "log.csv").open() as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["0", "1", "2"]

    out = tmp_path / "eval"
    evaluate = ["scripts/evaluate.py", "verify", "--root", str(lfw), "--pairs", str(pairs_csv(tmp_path / "p.csv"))]
    evaluate += ["--model", "custom:tiny", "--runtime", "onnx", "--folds", "0,1", "--out", str(out)]
    result = run_python(settings, evaluate, FACEREG_MODEL_DIR=dirs)
    assert result.returncode == 0, result.stderr[-2000:]
    verified = json.loads((out / "report.json").read_text())
    assert verified["model"] == "custom:tiny" and verified["n_pairs"] == 10 and verified["accuracy_mean"] >= 0.8


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "no <person>/<image> files"),
        ({"Colin_Powell": 3}, "at least two people"),
    ],
    ids=["empty", "one-person"],
)
def test_train_refuses_data_it_cannot_learn_from(
    infra: Settings, lfw: Path, tmp_path: Path, layout: dict[str, int], message: str
) -> None:
    data = tmp_path / "people"
    data.mkdir()
    for person, n in layout.items():
        (data / person).mkdir()
        for i in range(1, n + 1):
            (data / person / f"{i}.jpg").symlink_to(lfw / "images" / person / f"{person}_{i:04d}.jpg")
    result = run_python(
        isolated_settings(infra, tmp_path),
        ["scripts/train.py", "fit", "--data", str(data), "--run", str(tmp_path / "r")],
    )
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_resume_of_a_folder_that_is_not_a_run_is_refused(infra: Settings, tmp_path: Path) -> None:
    result = run_python(
        isolated_settings(infra, tmp_path), ["scripts/train.py", "fit", "--run", str(tmp_path), "--resume"]
    )
    assert result.returncode == 2 and "cannot resume" in result.stderr and "Traceback" not in result.stderr


def test_a_gallery_moves_onto_a_trained_model(
    ctx: ServiceContext, infra: Settings, tmp_path: Path, lfw_image: Img
) -> None:
    """The card of a trained model (here: the shipped weights under a new name and contract) reindexes a gallery."""
    models = tmp_path / "models"
    folder = card_dir(models, "copy")
    folder.mkdir(parents=True)
    settings = isolated_settings(infra, tmp_path, model_dir=[models, *ctx.settings.model_dir])
    shutil.copy(locate_weights(ZOO["mobilefacenet"], "torch", settings.model_dir), folder / "copy.pt")
    _write_copy_card(models)
    ids = {}
    for name in PEOPLE[:3]:
        images = [ImageInput(f"{n}.jpg", lfw_image(name, n).read_bytes()) for n in (1, 2)]
        ids[name] = enroll(ctx, PersonInput(name.replace("_", " ")), images).person_id
    trained = build_pipeline(settings, model="custom:copy", runtime="torch", detector="mtcnn")
    report = reindex(ctx, "default", trained)
    assert report["reindexed"] == 6
    assert get_gallery(ctx, "default").contract == trained.contract.id != ctx.pipeline.contract.id
    ctx.use_pipeline(trained)
    assert identify_image(ctx, lfw_image("Tony_Blair", 7))[0].person_id == ids["Tony_Blair"]


def _write_copy_card(models: Path) -> None:
    from model.model_card import ModelCard, write_card
    from model.weights import sha256_file
    from model.zoo import WeightsFile

    spec = ZOO["mobilefacenet"]
    weights = card_dir(models, "copy") / "copy.pt"
    card = ModelCard(
        name="copy",
        architecture="mobilefacenet",
        dim=128,
        preprocessing=spec.preprocessing,
        weights={"torch": WeightsFile(weights.name, sha256_file(weights))},
        verify_threshold=spec.verify_threshold,
        identify_threshold=spec.identify_threshold,
        threshold_source="the shipped model's",
        base_model="mobilefacenet",
        license=spec.license,
        created="2026-11-26T12:00:00+00:00",
    )
    write_card(models, card)
