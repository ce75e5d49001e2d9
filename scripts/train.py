"""Train or fine-tune a face embedder (MobileFaceNet or the ArcFace IResNet-50), and publish it to the zoo.

  python scripts/train.py fit --data DIR --run RUN [--init shipped|FILE] [--mode classify|triplet|contrastive|distill]
        [--head arcface|cosface|sphereface|combined] [--epochs N] [--lr X] [... every TrainConfig field]
        [--exclude-pairs PAIRS.csv --exclude-folds 5-9] [--publish NAME]
  python scripts/train.py fit --run RUN --resume [--epochs N]
  python scripts/train.py publish --run RUN --name NAME [--weights best|initial|epoch-N]

DIR is a folder of <person>/<images> (aligned on the fly with FACEREG_DETECTOR, chips cached under
FACEREG_DATA_DIR/cache/chips) or, with --aligned, of 112x112 aligned chips. The people of --exclude-folds of
--exclude-pairs are never trained on (LFW View 2 folds 5-9: the test people). RUN gets config.json,
split.json (who trains, who validates), data.json, log.csv (per epoch), steps.csv, curve.png, best.pt and
checkpoints/epoch-NNN.pt (each a full state: --resume goes on exactly). `publish` writes
<model dir>/custom/NAME/ (weights, ONNX, card.json): then FACEREG_MODEL=custom:NAME.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from model.embedders import resolve_device
from model.errors import TrainingError
from model.model_card import card_dir, check_card_name
from model.pipeline import FaceFinder
from model.training.augment import AugmentConfig, DegradeConfig
from model.training.checkpoint import load_checkpoint, save_atomic
from model.training.config import TrainConfig
from model.training.data import (
    ChipCache,
    Chips,
    Sample,
    Split,
    identities_of_pairs,
    scan_folder,
    split_identities,
    verification_pairs,
)
from model.training.publish import publish
from model.training.trainer import TrainData, Trainer
from model.training.validation import ValidationSet
from model.zoo import ZOO, locate_weights, spec_for_architecture
from scripts.cli import parser, print_json, run, setup_logging
from scripts.cli_args import FRACTION, POSITIVE, existing_dir, existing_file, fold_list
from services.config import Settings, get_settings
from services.engine import configure_threads, pipeline_options

NESTED = {"augment": AugmentConfig, "degrade": DegradeConfig}
SHIPPED_LICENSE = "derived from {base}: {license}"


def _config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (`--lr 0.1`, `--augment flip=0.5,lowres=0.3`); unset flags keep defaults."""
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name in NESTED:
            p.add_argument(flag, metavar="K=V,...", help=f"{f.name} (pairs as A:B): {_nested_help(NESTED[f.name])}")
        elif f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, metavar=f.name.upper(), help=f"default {f.default!r}")


def _nested_help(cls: type) -> str:
    return ", ".join(f"{f.name} (default {f.default!r})" for f in dataclasses.fields(cls))


def _parse_value(text: str, default: Any) -> Any:
    """A flag's text as the type of the field's default."""
    try:
        if isinstance(default, bool):
            return text.lower() in ("1", "true", "yes", "on")
        if isinstance(default, tuple):
            return tuple(type(default[0])(v) if default else int(v) for v in text.split(",") if v)
        return type(default)(text)
    except ValueError:
        raise TrainingError(f"{text!r} is not a {type(default).__name__}") from None


def _nested(cls: type, text: str) -> Any:
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for item in filter(None, text.split(";" if ";" in text else ",")):
        key, _, value = item.partition("=")
        if key not in defaults:
            raise TrainingError(f"unknown {cls.__name__} setting {key!r}; known: {', '.join(defaults)}")
        values[key] = _parse_value(value.replace(":", ","), defaults[key])
    return cls(**values)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """TrainConfig from the flags given, on top of `base` (a resumed run's config) or the defaults."""
    base = base or TrainConfig()
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is None:
            continue
        if f.name in NESTED:
            changes[f.name] = _nested(NESTED[f.name], given)
        elif isinstance(given, bool):
            changes[f.name] = given
        else:
            changes[f.name] = _parse_value(given, getattr(base, f.name))
    return dataclasses.replace(base, **changes)


def _finder(settings: Settings, aligned: bool) -> FaceFinder | None:
    if aligned:
        return None
    from model.detection import create_detector

    return FaceFinder(create_detector(settings.detector, settings.model_dir), pipeline_options(settings))


def _chips(settings: Settings, data: dict[str, Any], groups: dict[str, list[str]]) -> dict[str, Chips]:
    """The aligned chips of each named group of people (`{"training": split.train, ...}`), from the cache."""
    root = Path(data["root"])
    samples = scan_folder(root)
    cache = ChipCache(settings.data_dir / "cache" / "chips", _finder(settings, data["aligned"]))
    chips = {}
    for name, people in groups.items():
        wanted = set(people)
        chips[name] = cache.load(root, [s for s in samples if s.identity in wanted], f"aligning {name} photos")
    return chips


def _labels(samples: list[Sample]) -> np.ndarray:
    index = {name: i for i, name in enumerate(sorted({s.identity for s in samples}))}
    return np.asarray([index[s.identity] for s in samples], dtype=np.int64)


def _init_weights(settings: Settings, init: str | None, architecture: str) -> tuple[Path | None, str | None]:
    """(weights file, zoo model it comes from) of `--init`: none, `shipped` (the zoo's) or a file."""
    if init is None or init == "scratch":
        return None, None
    if init != "shipped":
        path = Path(init)
        if not path.is_file():
            raise TrainingError(f"--init {init}: no such weights file (or use shipped / scratch)")
        return path, None
    spec = spec_for_architecture(architecture)
    return locate_weights(spec, "torch", settings.model_dir), spec.name


def _prepare(args: argparse.Namespace, settings: Settings) -> tuple[TrainConfig, dict[str, Any], Split]:
    """A new run's config, data record and split, written to the run folder; or a resumed run's, read back."""
    run_dir: Path = args.run
    if args.resume:
        try:
            saved = json.loads((run_dir / "config.json").read_text())
            data = json.loads((run_dir / "data.json").read_text())
            split = Split(**json.loads((run_dir / "split.json").read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise TrainingError(
                f"cannot resume {run_dir}: its config/data/split record is missing or damaged ({exc})"
            ) from exc
        config = TrainConfig.from_json(saved)
        return (dataclasses.replace(config, epochs=int(args.epochs)) if args.epochs else config), data, split
    if args.data is None:
        raise TrainingError("--data DIR is required for a new run (or --resume an existing one)")
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise TrainingError(f"{run_dir} already holds a run: --resume it, or choose another --run folder")
    config = config_from_args(args)
    samples = scan_folder(args.data, args.min_images)
    folds = range(args.exclude_folds) if isinstance(args.exclude_folds, int) else args.exclude_folds
    excluded = identities_of_pairs(args.exclude_pairs, folds) if args.exclude_pairs else set()
    split = split_identities(samples, args.val_fraction, config.seed, excluded)
    init, base = _init_weights(settings, args.init, config.architecture)
    data = {
        "root": str(args.data.resolve()),
        "aligned": args.aligned,
        "min_images": args.min_images,
        "detector": "aligned chips" if args.aligned else settings.detector,
        "excluded_from": f"{args.exclude_pairs} folds {args.exclude_folds}" if args.exclude_pairs else None,
        "init": str(init) if init else "scratch",
        "base_model": base,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1))
    split.write(run_dir / "split.json")
    (run_dir / "data.json").write_text(json.dumps(data, indent=1))
    return config, data, split


def _fit(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    configure_threads(settings)
    config, data, split = _prepare(args, settings)
    loaded = _chips(settings, data, {"training": split.train, "validation": split.val})
    train, val = loaded["training"], loaded["validation"]
    data |= {
        "train_images": len(train.samples),
        "val_images": len(val.samples),
        "unreadable": len(train.failures) + len(val.failures),
    }
    data["unreadable_shown"] = dict(list({**train.failures, **val.failures}.items())[:20])
    (args.run / "data.json").write_text(json.dumps(data, indent=1))
    if not len(val.samples):
        raise TrainingError("no validation people: raise --val-fraction or add people with two or more images")
    val_set = ValidationSet(
        val.images, verification_pairs(_labels(val.samples).tolist(), config.val_pairs, config.seed), config.val_lowres
    )
    device = resolve_device(args.device)  # cuda without a GPU: a clear error, not torch's
    trainer = Trainer(config, TrainData(train.images, _labels(train.samples)), val_set, args.run, device, _init(data))
    result = trainer.fit(resume=args.resume)
    report: dict[str, Any] = {
        "run": str(args.run),
        "best_epoch": result.best_epoch,
        "best": result.best,
        "seconds": round(result.seconds, 1),
    }
    if args.publish:
        card = publish(
            args.run,
            args.run / "best.pt",
            args.publish,
            _model_dir(settings, args),
            val_set,
            datetime.now(UTC),
            data["base_model"],
            _license(data),
        )
        report["published"] = card.model_name
    return report


def _init(data: dict[str, Any]) -> Path | None:
    return None if data["init"] == "scratch" else Path(data["init"])


def _license(data: dict[str, Any]) -> str:
    base = data.get("base_model")
    if base:
        return SHIPPED_LICENSE.format(base=base, license=ZOO[base].license)
    return "trained by you on your data: the data's terms apply"


def _model_dir(settings: Settings, args: argparse.Namespace) -> Path:
    if args.model_dir is not None:
        return Path(args.model_dir)
    return settings.model_dir[0]


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    configure_threads(settings)
    check_card_name(args.name)
    config, data, split = _prepare(argparse.Namespace(**{**vars(args), "resume": True, "epochs": None}), settings)
    weights = args.run / (
        "checkpoints/" + args.weights + ".pt" if args.weights.startswith("epoch-") else args.weights + ".pt"
    )
    if not weights.is_file():
        raise TrainingError(f"{weights}: no such weights in the run (best, initial or epoch-NNN)")
    if weights.parent.name == "checkpoints":  # a full training state: its backbone alone is published
        state = load_checkpoint(weights, {"architecture": config.architecture})
        weights = save_atomic(state["backbone"], args.run / f"{args.weights}-backbone.pt")
    val = _chips(settings, data, {"validation": split.val})["validation"]
    val_set = ValidationSet(
        val.images, verification_pairs(_labels(val.samples).tolist(), config.val_pairs, config.seed)
    )
    card = publish(
        args.run,
        weights,
        args.name,
        _model_dir(settings, args),
        val_set,
        datetime.now(UTC),
        data["base_model"],
        _license(data),
    )
    return {"published": card.model_name, "card": str(card_dir(_model_dir(settings, args), args.name) / "card.json")}


def main() -> int:
    cli = parser(__doc__)
    sub = cli.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="train a run (new or --resume)")
    fit.add_argument("--data", type=existing_dir, help="a folder of <person>/<images>")
    fit.add_argument("--aligned", action="store_true", help="the images are 112x112 aligned chips")
    fit.add_argument("--min-images", type=POSITIVE, default=1, help="leave out people with fewer images")
    fit.add_argument("--val-fraction", type=FRACTION, default=0.1, help="share of people kept for validation")
    fit.add_argument(
        "--exclude-pairs", type=existing_file, help="a pairs CSV whose --exclude-folds people are never used"
    )
    fit.add_argument("--exclude-folds", type=fold_list, default=[5, 6, 7, 8, 9], help="fold ids: 5-9 or 5,6,7")
    fit.add_argument("--init", help="scratch (default), shipped (the zoo's weights) or a weights file")
    fit.add_argument("--resume", action="store_true", help="go on from the run's last checkpoint")
    fit.add_argument("--publish", metavar="NAME", help="publish the best checkpoint as custom:NAME")
    fit.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when a GPU is visible)")
    _config_flags(fit)
    pub = sub.add_parser("publish", help="publish a run's weights as custom:NAME")
    pub.add_argument("--name", required=True)
    pub.add_argument("--weights", default="best", help="best | initial | epoch-NNN")
    for p in (fit, pub):
        p.add_argument("--run", type=Path, required=True, help="the run folder")
        p.add_argument("--model-dir", help="where to publish (default: the first FACEREG_MODEL_DIR)")
        p.add_argument("-v", "--verbose", action="store_true")
    args = cli.parse_args()
    setup_logging(args.verbose)
    print_json(_fit(args) if args.command == "fit" else _publish(args))
    return 0


if __name__ == "__main__":
    run(main)
