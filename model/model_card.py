"""Model cards: a trained model as a zoo entry (`FACEREG_MODEL=custom:<name>`).

A card lives in `<model dir>/custom/<name>/card.json`, beside `<name>.pt` (a plain backbone state dict) and
optionally `<name>.onnx`. It records the network, its preprocessing, the sha256 of each weights file (checked
on load), the thresholds and how the model was trained. Reading is strict: a card that does not fit is refused
with a message naming the card and the field.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from model.errors import ModelUnavailable
from model.zoo import ZOO, ModelSpec, Preprocessing, WeightsFile

CARD_FORMAT = "facereg-model-card/1"
CUSTOM_PREFIX = "custom:"
CARD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # matched whole (fullmatch)
CARD_FILE = "card.json"
CUSTOM_DIR = "custom"
# The networks a card may name: those model/embedders/torch_embedder.py builds (a unit test keeps them equal;
# importing it here would load torch into every process that reads a card).
ARCHITECTURES = ("mobilefacenet", "iresnet50")
CARD_RUNTIMES = ("torch", "onnx")  # torch is required, onnx optional
ALIGNMENTS = ("arcface-112",)  # the embedders' chips: the ArcFace template
COLORS = ("RGB",)
UPSTREAM = "trained with facereg scripts/train.py"
TRAIN_HINT = "train one with scripts/train.py"

_FIELDS = (
    "format",
    "name",
    "architecture",
    "dim",
    "preprocessing",
    "weights",
    "verify_threshold",
    "identify_threshold",
    "threshold_source",
    "base_model",
    "license",
    "created",
    "training",
)
_PRE_FIELDS = ("alignment", "input_size", "mean", "std", "color")
_WEIGHTS_FIELDS = ("file", "sha256")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_custom(name: str) -> bool:
    """Whether `name` names a trained model (`custom:<name>`), valid or not."""
    return name.startswith(CUSTOM_PREFIX)


def custom_name(model_name: str) -> str:
    """The card name of `custom:<name>`, checked against CARD_NAME."""
    if not is_custom(model_name):
        raise ModelUnavailable(f"{model_name!r} is not a custom model name ({CUSTOM_PREFIX}<name>)")
    return check_card_name(model_name.removeprefix(CUSTOM_PREFIX))


def check_card_name(name: str) -> str:
    """`name` itself when it is a card name (CARD_NAME: no path, no upper case), else ModelUnavailable."""
    if not CARD_NAME.fullmatch(name):
        raise ModelUnavailable(
            f"invalid custom model name {name[:80]!r}: a name is 1-64 of a-z, 0-9, '_' and '-', starting with a "
            "letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What card.json says of one trained model (see the module docstring for the file layout)."""

    name: str
    architecture: str
    dim: int
    preprocessing: Preprocessing
    weights: Mapping[str, WeightsFile]  # runtime -> file in the card's folder, torch first
    verify_threshold: float
    identify_threshold: float
    threshold_source: str
    base_model: str | None
    license: str
    created: str  # ISO-8601 with its UTC offset
    training: Mapping[str, Any] = field(default_factory=dict)  # data, split, config, metrics: free-form JSON

    @property
    def model_name(self) -> str:
        return f"{CUSTOM_PREFIX}{self.name}"

    def to_json(self) -> dict[str, Any]:
        """The card.json object."""
        pre = self.preprocessing
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "architecture": self.architecture,
            "dim": self.dim,
            "preprocessing": {
                "alignment": pre.alignment,
                "input_size": pre.input_size,
                "mean": list(pre.mean),
                "std": list(pre.std),
                "color": pre.color,
            },
            "weights": {rt: {"file": wf.filename, "sha256": wf.sha256} for rt, wf in _torch_first(self.weights)},
            "verify_threshold": self.verify_threshold,
            "identify_threshold": self.identify_threshold,
            "threshold_source": self.threshold_source,
            "base_model": self.base_model,
            "license": self.license,
            "created": self.created,
            "training": dict(self.training),
        }

    @classmethod
    def from_json(cls, data: object, source: Path) -> ModelCard:
        """The card in `data`, read from `source` (`<model dir>/custom/<name>/card.json`), strictly checked."""
        card = _Fields(source)
        top = card.mapping(data, "", _FIELDS)
        if top["format"] != CARD_FORMAT:
            raise card.error("format", f"is {top['format']!r}; this version of facereg reads {CARD_FORMAT!r}")
        name = card.text(top["name"], "name")
        if not CARD_NAME.fullmatch(name):
            raise card.error("name", f"{name[:80]!r} is not a card name (1-64 of a-z, 0-9, '_', '-')")
        if name != source.parent.name:
            raise card.error("name", f"is {name!r} but the card is in the folder {source.parent.name!r}")
        return cls(
            name=name,
            architecture=card.choice(top["architecture"], "architecture", ARCHITECTURES),
            dim=card.positive_int(top["dim"], "dim"),
            preprocessing=card.preprocessing(top["preprocessing"]),
            weights=card.weights(top["weights"]),
            verify_threshold=card.threshold(top["verify_threshold"], "verify_threshold"),
            identify_threshold=card.threshold(top["identify_threshold"], "identify_threshold"),
            threshold_source=card.text(top["threshold_source"], "threshold_source"),
            base_model=card.base_model(top["base_model"]),
            license=card.text(top["license"], "license"),
            created=card.created(top["created"]),
            training=card.mapping(top["training"], "training"),
        )


def _torch_first(weights: Mapping[str, WeightsFile]) -> list[tuple[str, WeightsFile]]:
    return sorted(weights.items(), key=lambda item: CARD_RUNTIMES.index(item[0]) if item[0] in CARD_RUNTIMES else 99)


class _Fields:
    """Typed reading of a card's fields; each problem becomes a ModelUnavailable naming the card and field."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def error(self, name: str, problem: str) -> ModelUnavailable:
        """`name` "": the card as a whole."""
        return ModelUnavailable(f"model card {self.source}: {f'field {name!r} ' if name else ''}{problem}")

    def mapping(self, value: object, name: str, required: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON object; with `required`, exactly those keys."""
        if not isinstance(value, dict):
            raise self.error(name, f"must be a JSON object, not {_json_type(value)}")
        if required is not None:
            missing = [k for k in required if k not in value]
            extra = sorted(str(k) for k in value if k not in required)
            if missing:
                raise self.error(name, f"lacks {', '.join(missing)}")
            if extra:
                raise self.error(name, f"has unknown fields: {', '.join(extra)}")
        return value

    def text(self, value: object, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty string, not {_json_type(value)}")
        return value

    def choice(self, value: object, name: str, choices: Sequence[str]) -> str:
        if value not in choices:
            raise self.error(name, f"is {_shown(value)}; one of: {', '.join(choices)}")
        return str(value)

    def positive_int(self, value: object, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(name, f"must be a positive integer, not {_shown(value)}")
        return value

    def number(self, value: object, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(name, f"must be a finite number, not {_shown(value)}")
        return float(value)

    def threshold(self, value: object, name: str) -> float:
        number = self.number(value, name)
        if not -1.0 <= number <= 1.0:
            raise self.error(name, f"must be a cosine in [-1, 1], not {number}")
        return number

    def triple(self, value: object, name: str, positive: bool = False) -> tuple[float, float, float]:
        if not isinstance(value, list) or len(value) != 3:
            raise self.error(name, f"must be a list of 3 numbers, not {_shown(value)}")
        a, b, c = (self.number(v, name) for v in value)
        if positive and min(a, b, c) <= 0:
            raise self.error(name, f"must hold positive numbers, not {value}")
        return a, b, c

    def preprocessing(self, value: object) -> Preprocessing:
        pre = self.mapping(value, "preprocessing", _PRE_FIELDS)
        return Preprocessing(
            alignment=self.choice(pre["alignment"], "preprocessing.alignment", ALIGNMENTS),
            input_size=self.positive_int(pre["input_size"], "preprocessing.input_size"),
            mean=self.triple(pre["mean"], "preprocessing.mean"),
            std=self.triple(pre["std"], "preprocessing.std", positive=True),
            color=self.choice(pre["color"], "preprocessing.color", COLORS),
        )

    def weights(self, value: object) -> dict[str, WeightsFile]:
        runtimes = self.mapping(value, "weights")
        if "torch" not in runtimes:
            raise self.error("weights", "lacks torch (the <name>.pt state dict every card has)")
        unknown = sorted(str(k) for k in runtimes if k not in CARD_RUNTIMES)
        if unknown:
            raise self.error("weights", f"has unknown runtimes: {', '.join(unknown)} (a card has {CARD_RUNTIMES})")
        return {rt: self.weights_file(runtimes[rt], f"weights.{rt}") for rt in CARD_RUNTIMES if rt in runtimes}

    def weights_file(self, value: object, name: str) -> WeightsFile:
        entry = self.mapping(value, name, _WEIGHTS_FIELDS)
        filename = self.text(entry["file"], f"{name}.file")
        if "/" in filename or "\\" in filename or filename in (".", ".."):
            raise self.error(f"{name}.file", f"is {filename[:80]!r}: a file name in the card's folder, not a path")
        sha = entry["sha256"]
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise self.error(f"{name}.sha256", f"must be 64 lowercase hex digits, not {_shown(sha)}")
        return WeightsFile(filename, sha)

    def base_model(self, value: object) -> str | None:
        if value is None:
            return None
        name = self.text(value, "base_model")
        if name in ZOO or (is_custom(name) and CARD_NAME.fullmatch(name.removeprefix(CUSTOM_PREFIX))):
            return name
        raise self.error("base_model", f"is {_shown(name)}; null, a zoo model ({', '.join(ZOO)}) or custom:<name>")

    def created(self, value: object) -> str:
        text = self.text(value, "created")
        try:
            aware = datetime.fromisoformat(text).utcoffset() is not None
        except ValueError:
            aware = False
        if not aware:
            raise self.error("created", f"is {_shown(text)}: an ISO-8601 time with its UTC offset")
        return text


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def card_dir(model_dir: Path, name: str) -> Path:
    """`<model_dir>/custom/<name>`: where a card and its weights files live."""
    return model_dir / CUSTOM_DIR / check_card_name(name)


def write_card(model_dir: Path, card: ModelCard) -> Path:
    """Write `card` to `<model_dir>/custom/<name>/card.json` atomically; its weights files must be there already."""
    folder = card_dir(model_dir, card.name)
    path = folder / CARD_FILE
    data = card.to_json()
    ModelCard.from_json(data, path)  # what is written can be read back
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ModelUnavailable(f"model card {path}: field 'training' is not JSON ({exc})") from exc
    missing = [wf.filename for wf in card.weights.values() if not (folder / wf.filename).is_file()]
    if missing:
        raise ModelUnavailable(f"model card {path}: write {', '.join(missing)} into {folder} before the card")
    tmp = path.with_name(f".{CARD_FILE}.{os.getpid()}.part")  # beside the card: the rename is atomic
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_card(path: Path) -> ModelCard:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(f"model card {path} cannot be read ({exc})") from exc
    return ModelCard.from_json(data, path)


def find_card(name: str, model_dirs: Sequence[Path]) -> Path:
    """The card.json of `name` in the first of `model_dirs` that has one."""
    check_card_name(name)
    for d in model_dirs:
        path = card_dir(d, name) / CARD_FILE
        if path.is_file():
            return path
    where = ", ".join(str(card_dir(d, name)) for d in model_dirs) or "(no model dir configured)"
    raise ModelUnavailable(f"no model card for {CUSTOM_PREFIX}{name}: looked for {CARD_FILE} in {where}; {TRAIN_HINT}")


def list_cards(model_dirs: Sequence[Path]) -> list[str]:
    """The `custom:<name>` models whose card is found in `model_dirs` (first dir first, each name once)."""
    names: dict[str, None] = {}
    for d in model_dirs:
        for path in sorted((d / CUSTOM_DIR).glob(f"*/{CARD_FILE}")):
            if CARD_NAME.fullmatch(path.parent.name) and path.is_file():
                names[f"{CUSTOM_PREFIX}{path.parent.name}"] = None
    return list(names)


def spec_from_card(card: ModelCard) -> ModelSpec:
    """The zoo entry of a trained model: its contract's weights id is the sha256 of its torch weights."""
    origin = f"fine-tuned from {card.base_model}" if card.base_model else "trained from scratch"
    return ModelSpec(
        name=card.model_name,
        architecture=card.architecture,
        dim=card.dim,
        preprocessing=card.preprocessing,
        weights=dict(_torch_first(card.weights)),
        license=card.license,
        upstream=UPSTREAM,
        verify_threshold=card.verify_threshold,
        identify_threshold=card.identify_threshold,
        threshold_source=card.threshold_source,
        subdir=f"{CUSTOM_DIR}/{card.name}",
        canonical_sha256=card.weights["torch"].sha256,
        notes=f"a custom model ({origin} on {card.created}): its card and weights are in "
        f"<model dir>/{CUSTOM_DIR}/{card.name}/; {TRAIN_HINT}",
    )


def load_spec(model_name: str, model_dirs: Sequence[Path]) -> ModelSpec:
    """The zoo entry of `custom:<name>` from its card in `model_dirs`."""
    return spec_from_card(read_card(find_card(custom_name(model_name), model_dirs)))
