"""Model cards (model/model_card.py): a trained model as a zoo entry, `custom:<name>`, read strictly, found in the
model dirs, and accepted wherever a model is named (zoo, task messages, realtime chips)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from model.embedders.torch_embedder import ARCHITECTURES as TORCH_ARCHITECTURES
from model.errors import ModelUnavailable
from model.model_card import (
    ARCHITECTURES,
    CARD_FORMAT,
    ModelCard,
    card_dir,
    custom_name,
    find_card,
    is_custom,
    list_cards,
    read_card,
    spec_from_card,
    write_card,
)
from model.zoo import ZOO, Preprocessing, WeightsFile, get_spec
from services.attendance.recognition import chip_size
from services.storage.records import Gallery
from workers.errors import InvalidTaskMessage
from workers.messages import ReindexArgs

SHA_PT = "a" * 64
SHA_ONNX = "0123456789abcdef" * 4
NAME = "good-name"


def card_data(name: str = NAME) -> dict[str, Any]:
    """A complete card.json, written out by hand."""
    return {
        "format": "facereg-model-card/1",
        "name": name,
        "architecture": "mobilefacenet",
        "dim": 128,
        "preprocessing": {
            "alignment": "arcface-112",
            "input_size": 112,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "color": "RGB",
        },
        "weights": {
            "torch": {"file": f"{name}.pt", "sha256": SHA_PT},
            "onnx": {"file": f"{name}.onnx", "sha256": SHA_ONNX},
        },
        "verify_threshold": 0.33,
        "identify_threshold": 0.48,
        "threshold_source": "best accuracy on the validation pairs",
        "base_model": "mobilefacenet",
        "license": "research use",
        "created": "2026-03-01T12:00:00+00:00",
        "training": {"data": "lfw-train", "config": {"epochs": 2}, "metrics": {"val_accuracy": 0.91}},
    }


def source(root: Path, name: str = NAME) -> Path:
    return root / "custom" / name / "card.json"


def put_card(model_dir: Path, data: dict[str, Any]) -> Path:
    """card.json and empty weights files, as a training run leaves them (bypassing write_card)."""
    path = source(model_dir, data["name"])
    path.parent.mkdir(parents=True)
    for entry in data["weights"].values():
        (path.parent / entry["file"]).write_bytes(b"w")
    path.write_text(json.dumps(data))
    return path


def the_card(name: str = NAME) -> ModelCard:
    return ModelCard(
        name=name,
        architecture="mobilefacenet",
        dim=128,
        preprocessing=Preprocessing("arcface-112", 112, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        weights={"torch": WeightsFile(f"{name}.pt", SHA_PT), "onnx": WeightsFile(f"{name}.onnx", SHA_ONNX)},
        verify_threshold=0.33,
        identify_threshold=0.48,
        threshold_source="best accuracy on the validation pairs",
        base_model="mobilefacenet",
        license="research use",
        created="2026-03-01T12:00:00+00:00",
        training={"data": "lfw-train", "config": {"epochs": 2}, "metrics": {"val_accuracy": 0.91}},
    )


# Names


def test_custom_names() -> None:
    assert is_custom("custom:x") and is_custom("custom:") and not is_custom("mobilefacenet")
    assert custom_name("custom:good-name") == "good-name"
    assert custom_name("custom:a") == "a" and custom_name("custom:" + "a" * 64) == "a" * 64
    for bad in ("custom:", "custom:../x", "custom:UPPER", "custom:-x", "custom:" + "a" * 65, "custom:a\n", "x"):
        with pytest.raises(ModelUnavailable):
            custom_name(bad)


def test_card_dir_is_custom_slash_name_and_refuses_a_path() -> None:
    assert card_dir(Path("/m"), "good-name") == Path("/m/custom/good-name")
    with pytest.raises(ModelUnavailable, match="invalid custom model name"):
        card_dir(Path("/m"), "../etc")


def test_the_card_architectures_are_those_torch_builds() -> None:
    assert set(ARCHITECTURES) == set(TORCH_ARCHITECTURES)


# Reading and writing


def test_a_card_reads_into_its_fields(tmp_path: Path) -> None:
    assert ModelCard.from_json(card_data(), source(tmp_path)) == the_card()


def test_to_json_is_the_card_file() -> None:
    assert the_card().to_json() == card_data()
    assert card_data()["format"] == CARD_FORMAT


def test_write_card_writes_what_read_card_reads(tmp_path: Path) -> None:
    folder = tmp_path / "custom" / NAME
    folder.mkdir(parents=True)
    (folder / f"{NAME}.pt").write_bytes(b"pt")
    (folder / f"{NAME}.onnx").write_bytes(b"onnx")
    path = write_card(tmp_path, the_card())
    assert path == folder / "card.json"
    assert json.loads(path.read_text()) == card_data()
    assert read_card(path) == the_card()
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", f"{NAME}.onnx", f"{NAME}.pt"]  # no .part


def test_write_card_replaces_an_older_card(tmp_path: Path) -> None:
    put_card(tmp_path, card_data())
    newer = the_card()
    newer = ModelCard(**{**{f: getattr(newer, f) for f in ModelCard.__dataclass_fields__}, "verify_threshold": 0.4})
    write_card(tmp_path, newer)
    assert json.loads(source(tmp_path).read_text())["verify_threshold"] == 0.4


def test_write_card_needs_the_weights_files_first(tmp_path: Path) -> None:
    folder = tmp_path / "custom" / NAME
    folder.mkdir(parents=True)
    (folder / f"{NAME}.pt").write_bytes(b"pt")
    with pytest.raises(ModelUnavailable, match=f"write {NAME}.onnx into"):
        write_card(tmp_path, the_card())
    assert not (folder / "card.json").exists()


def test_write_card_refuses_a_card_it_could_not_read_back(tmp_path: Path) -> None:
    put_card(tmp_path, card_data())
    before = source(tmp_path).read_text()
    fields = {f: getattr(the_card(), f) for f in ModelCard.__dataclass_fields__}
    with pytest.raises(ModelUnavailable, match="'identify_threshold'"):
        write_card(tmp_path, ModelCard(**{**fields, "identify_threshold": 1.5}))
    with pytest.raises(ModelUnavailable, match="'training' is not JSON"):
        write_card(tmp_path, ModelCard(**{**fields, "training": {"loss": float("nan")}}))
    assert source(tmp_path).read_text() == before


def _set(path: str, value: Any) -> Any:
    """A change of card_data(): the dotted field set to `value` (or removed, for DELETE)."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        if value is DELETE:
            del data[last]
        else:
            data[last] = value

    return change


DELETE = object()
BAD_CARDS = [
    ("format", "facereg-model-card/2", "'format' is 'facereg-model-card/2'"),
    ("name", "other", "'name' is 'other' but the card is in the folder 'good-name'"),
    ("name", "Good-Name", "'name'"),
    ("name", 7, "'name' must be a non-empty string"),
    ("architecture", "resnet18", "'architecture' is 'resnet18'; one of: mobilefacenet, iresnet50"),
    ("architecture", "dlib-resnet29", "'architecture'"),
    ("dim", 0, "'dim' must be a positive integer, not 0"),
    ("dim", "128", "'dim' must be a positive integer, not '128'"),
    ("dim", True, "'dim'"),
    ("dim", 128.0, "'dim'"),
    ("dim", DELETE, "lacks dim"),
    ("verify_threshold", 1.5, "'verify_threshold' must be a cosine in [-1, 1], not 1.5"),
    ("identify_threshold", -1.01, "'identify_threshold' must be a cosine in [-1, 1]"),
    ("identify_threshold", float("nan"), "'identify_threshold' must be a finite number"),
    ("verify_threshold", "0.3", "'verify_threshold' must be a finite number"),
    ("verify_threshold", None, "'verify_threshold'"),
    ("threshold_source", "", "'threshold_source' must be a non-empty string"),
    ("license", None, "'license' must be a non-empty string, not null"),
    ("base_model", "facenet", "'base_model' is 'facenet'"),
    ("base_model", "custom:../x", "'base_model'"),
    ("created", "yesterday", "'created' is 'yesterday': an ISO-8601 time with its UTC offset"),
    ("created", "2026-03-01T12:00:00", "'created'"),
    ("training", [], "'training' must be a JSON object, not a list"),
    ("surprise", 1, "has unknown fields: surprise"),
    ("preprocessing.alignment", "dlib-150", "'preprocessing.alignment'"),
    ("preprocessing.input_size", 0, "'preprocessing.input_size'"),
    ("preprocessing.mean", [0.5, 0.5], "'preprocessing.mean' must be a list of 3 numbers"),
    ("preprocessing.std", [0.5, 0.0, 0.5], "'preprocessing.std' must hold positive numbers"),
    ("preprocessing.color", "BGR", "'preprocessing.color'"),
    ("preprocessing.color", DELETE, "'preprocessing' lacks color"),
    ("weights.torch", DELETE, "'weights' lacks torch"),
    ("weights.dlib", {"file": "x.dat", "sha256": SHA_PT}, "'weights' has unknown runtimes: dlib"),
    ("weights.torch.file", "../evil.pt", "'weights.torch.file' is '../evil.pt': a file name in the card's folder"),
    ("weights.onnx.file", "sub/x.onnx", "'weights.onnx.file'"),
    ("weights.torch.file", "sub\\x.pt", "'weights.torch.file'"),
    ("weights.torch.file", "..", "'weights.torch.file'"),
    ("weights.torch.sha256", "xyz", "'weights.torch.sha256' must be 64 lowercase hex digits"),
    ("weights.torch.sha256", SHA_PT.upper(), "'weights.torch.sha256'"),
    ("weights.torch.sha256", None, "'weights.torch.sha256'"),
    ("weights.torch.url", "http://x", "'weights.torch' has unknown fields: url"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_CARDS, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_CARDS])
def test_a_card_that_does_not_fit_is_refused_naming_the_card_and_field(
    tmp_path: Path, field: str, value: Any, message: str
) -> None:
    data = copy.deepcopy(card_data())
    _set(field, value)(data)
    with pytest.raises(ModelUnavailable) as info:
        ModelCard.from_json(data, source(tmp_path))
    assert str(info.value).startswith(f"model card {source(tmp_path)}: ")
    assert message in str(info.value)


def test_a_card_that_is_not_an_object_or_not_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="must be a JSON object, not a list"):
        ModelCard.from_json([card_data()], source(tmp_path))
    path = put_card(tmp_path, card_data())
    path.write_text('{"format": ')
    with pytest.raises(ModelUnavailable, match=f"model card {re.escape(str(path))} cannot be read"):
        read_card(path)


def test_a_card_without_onnx_and_from_scratch_is_valid(tmp_path: Path) -> None:
    data = card_data()
    del data["weights"]["onnx"]
    data["base_model"] = None
    card = ModelCard.from_json(data, source(tmp_path))
    assert card.weights == {"torch": WeightsFile(f"{NAME}.pt", SHA_PT)} and card.base_model is None


# Finding and listing


def test_find_card_takes_the_first_dir_that_has_it(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    put_card(b, card_data())
    assert find_card(NAME, [a, b, c]) == source(b)
    put_card(c, card_data())
    assert find_card(NAME, [a, c, b]) == source(c)
    assert find_card(NAME, [a, b, c]) == source(b)


def test_find_card_says_where_it_looked_and_how_to_get_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    (b / "custom" / NAME).mkdir(parents=True)  # a folder without a card does not count
    with pytest.raises(ModelUnavailable) as info:
        find_card(NAME, [a, b])
    message = str(info.value)
    assert f"no model card for custom:{NAME}" in message
    assert str(a / "custom" / NAME) in message and str(b / "custom" / NAME) in message
    assert "train one with scripts/train.py" in message
    with pytest.raises(ModelUnavailable, match="no model dir configured"):
        find_card(NAME, [])
    with pytest.raises(ModelUnavailable, match="invalid custom model name"):
        find_card("../a", [tmp_path])


def test_list_cards_names_each_card_once_first_dir_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    put_card(a, card_data("zeta"))
    put_card(a, card_data("alpha"))
    put_card(b, card_data("beta"))
    put_card(b, card_data("zeta"))
    (b / "custom" / "no-card").mkdir()
    (b / "custom" / "Bad Name").mkdir()
    (b / "custom" / "Bad Name" / "card.json").write_text("{}")
    assert list_cards([a, b, tmp_path / "missing"]) == ["custom:alpha", "custom:zeta", "custom:beta"]
    assert list_cards([]) == []


# The zoo entry


def test_spec_from_card() -> None:
    spec = spec_from_card(the_card())
    assert spec.name == "custom:good-name" and spec.subdir == "custom/good-name"
    assert spec.architecture == "mobilefacenet" and spec.dim == 128
    assert spec.preprocessing == Preprocessing("arcface-112", 112, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert list(spec.weights) == ["torch", "onnx"] and spec.default_runtime() == "torch"
    assert spec.weights["onnx"] == WeightsFile("good-name.onnx", SHA_ONNX)
    assert spec.canonical_sha256 == SHA_PT
    assert (spec.verify_threshold, spec.identify_threshold) == (0.33, 0.48)
    assert spec.threshold_source == "best accuracy on the validation pairs" and spec.license == "research use"
    assert spec.upstream == "trained with facereg scripts/train.py"
    assert "fine-tuned from mobilefacenet" in spec.notes and "custom/good-name/" in spec.notes


def test_spec_from_card_puts_torch_first() -> None:
    fields = {f: getattr(the_card(), f) for f in ModelCard.__dataclass_fields__}
    onnx_first = ModelCard(
        **{**fields, "weights": {"onnx": WeightsFile("x.onnx", SHA_ONNX), "torch": fields["weights"]["torch"]}}
    )
    assert spec_from_card(onnx_first).runtimes == ("torch", "onnx")


def test_get_spec_of_a_custom_model_reads_its_card(tmp_path: Path) -> None:
    put_card(tmp_path / "b", card_data())
    spec = get_spec("custom:good-name", [tmp_path / "a", tmp_path / "b"])
    assert spec == spec_from_card(the_card())
    assert get_spec("mobilefacenet", [tmp_path]) is ZOO["mobilefacenet"]


def test_get_spec_of_a_custom_model_needs_a_model_dir_and_a_valid_name(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no model dir configured"):
        get_spec("custom:good-name")
    with pytest.raises(ModelUnavailable, match="invalid custom model name"):
        get_spec("custom:../x", [tmp_path])
    with pytest.raises(
        ModelUnavailable, match=r"choose one of: arcface-r50, mobilefacenet, dlib, auto or custom:<name>"
    ):
        get_spec("facenet", [tmp_path])


def test_a_custom_gallery_takes_chips_of_its_cards_input_size(tmp_path: Path) -> None:
    put_card(tmp_path, card_data())
    when = datetime(2026, 3, 1, tzinfo=UTC)
    gallery = Gallery("default", "c", "custom:good-name", 128, "coll", 0.33, 0.48, when, when)
    assert chip_size(gallery, [tmp_path]) == 112
    with pytest.raises(ModelUnavailable, match="no model card for custom:good-name"):
        chip_size(gallery, [tmp_path / "elsewhere"])


# Task messages


def test_a_reindex_message_takes_a_custom_model() -> None:
    parsed = ReindexArgs.parse("reindex", ("default", "custom:good-name"), {})
    assert isinstance(parsed, ReindexArgs) and parsed.model == "custom:good-name"


@pytest.mark.parametrize("name", ["custom:../x", "custom:", "custom:UPPER", "custom:a/b", "custom:good-name\n", "x"])
def test_a_reindex_message_refuses_a_bad_custom_name(name: str) -> None:
    with pytest.raises(InvalidTaskMessage, match="model: unknown model"):
        ReindexArgs.parse("reindex", ("default", name), {})


def test_the_message_schema_says_which_model_names_pass() -> None:
    schema = ReindexArgs.model_json_schema()["properties"]["model"]
    enum, custom = schema["anyOf"]

    def passes(name: str) -> bool:
        return name in enum["enum"] or re.search(custom["pattern"], name) is not None

    assert enum["enum"] == [*ZOO, "auto"]
    assert all(re.fullmatch(r"[a-z0-9-]+", name) for name in ZOO)  # the messages' regex joins them unescaped
    assert passes("custom:good-name") and passes("dlib") and passes("auto")
    assert not any(passes(n) for n in ("custom:../x", "custom:", "custom:UPPER", "facenet", "custom:" + "a" * 65))
