"""The model zoo: what each embedding model is, where its weights come from, and its contract.

The *embedding contract* is the identity of a vector space: model, weights and preprocessing.
Vectors of different contracts are never compared.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model.errors import ModelUnavailable
from model.weights import find_weights, sha256_file

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx", "dlib")


@dataclass(frozen=True, slots=True)
class WeightsFile:
    """One runtime's weights. `archive_member`: the file inside a downloaded zip."""

    filename: str
    sha256: str | None
    url: str | None = None
    archive_member: str | None = None


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """How a detected face becomes the network's input."""

    alignment: str  # "arcface-112": 5-point similarity to the ArcFace template; "dlib-150": dlib face chip
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color: str = "RGB"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    architecture: str
    dim: int
    preprocessing: Preprocessing
    weights: Mapping[str, WeightsFile]  # runtime -> file, preferred runtime first
    license: str
    upstream: str
    verify_threshold: float  # 1:1 cosine threshold (see `threshold_source`)
    identify_threshold: float  # 1:N open-set threshold: much higher than the 1:1 one
    threshold_source: str
    subdir: str = ""
    # sha256 of the weights every runtime's file was made from: the contract's weights id.
    canonical_sha256: str | None = None
    notes: str = ""
    extra_files: Mapping[str, WeightsFile] = field(default_factory=dict)

    @property
    def runtimes(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def default_runtime(self) -> str:
        return self.runtimes[0]


@dataclass(frozen=True, slots=True)
class EmbeddingContract:
    """The identity of a vector space. `id` is stored on every gallery and compared on every query."""

    model: str
    dim: int
    weights_sha256: str
    preprocessing: Preprocessing
    flip: bool

    @property
    def id(self) -> str:
        payload = json.dumps(
            {
                "model": self.model,
                "dim": self.dim,
                "weights": self.weights_sha256,
                "pre": asdict(self.preprocessing),
                "flip": self.flip,
            },
            sort_keys=True,
        )
        return f"{self.model}-{self.dim}d-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


_IMAGENET = Preprocessing("arcface-112", 112, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_SYMMETRIC = Preprocessing("arcface-112", 112, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

ZOO: dict[str, ModelSpec] = {
    "arcface-r50": ModelSpec(
        name="arcface-r50",
        architecture="iresnet50",
        dim=512,
        preprocessing=_SYMMETRIC,
        weights={
            "torch": WeightsFile("arcface_r50.pth", None, None),
            "onnx": WeightsFile(
                "w600k_r50.onnx",
                None,
                "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
                archive_member="w600k_r50.onnx",
            ),
        },
        license="insightface pretrained models: non-commercial research use only",
        upstream="https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch",
        verify_threshold=0.28,
        identify_threshold=0.45,
        threshold_source="insightface's usual cosine threshold for R50 models; calibrate on your data",
        subdir="arcface-r50",
        notes="torch: an arcface_torch r50 backbone.pth (e.g. ms1mv3_arcface_r50_fp16) saved as arcface_r50.pth",
    ),
    "mobilefacenet": ModelSpec(
        name="mobilefacenet",
        architecture="mobilefacenet",
        dim=128,
        preprocessing=_IMAGENET,
        weights={
            "torch": WeightsFile(
                "mobilefacenet.pt",
                "90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4",
                "https://github.com/foamliu/MobileFaceNet/raw/a6cc9032a659b615f477833e1a70b5e7931bcccc/weights/mobilefacenet.pt",
            ),
            "onnx": WeightsFile(
                "mobilefacenet.onnx",
                "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507",
                "https://github.com/foamliu/MobileFaceNet/raw/a6cc9032a659b615f477833e1a70b5e7931bcccc/weights/MobileFaceNet.onnx",
            ),
        },
        license="code Apache-2.0; weights trained on MS-Celeb-1M: research use unless cleared",
        upstream="https://github.com/foamliu/MobileFaceNet",
        verify_threshold=0.31,
        identify_threshold=0.457,
        threshold_source="1:1: best-accuracy threshold on LFW View 1 DevTrain (2,200 pairs, MTCNN, 0.312); "
        "1:N: FPIR 1 % on 600 LFW people outside gallery_split.csv searched against its 423 through the services "
        "(MTCNN, template weight 0.75: 0.4570; RetinaFace: 0.4461)",
        subdir="mobilefacenet",
        canonical_sha256="90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4",
    ),
    "dlib": ModelSpec(
        name="dlib",
        architecture="dlib-resnet29",
        dim=128,
        preprocessing=Preprocessing("dlib-150", 150, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        weights={
            "dlib": WeightsFile(
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            ),
        },
        extra_files={
            "shape_predictor": WeightsFile(
                "shape_predictor_5_face_landmarks.dat",
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            ),
        },
        license="public domain (dlib model files); ships in the PyPI package face-recognition-models",
        upstream="https://github.com/davisking/dlib-models",
        verify_threshold=0.907,
        identify_threshold=0.951,
        threshold_source="1:1: best-accuracy threshold on LFW View 1 DevTrain (2,200 pairs, MTCNN, 0.907); "
        "1:N: FPIR 1 % on 600 LFW people outside gallery_split.csv searched against its 423 through the services "
        "(MTCNN, template weight 0.75: 0.9511; RetinaFace: 0.9517)",
        canonical_sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),
}

# Preference of FACEREG_MODEL=auto: the production model first.
AUTO_ORDER = ("arcface-r50", "mobilefacenet", "dlib")


def get_spec(name: str, model_dirs: Sequence[Path] = ()) -> ModelSpec:
    """A zoo model, or a trained one (`custom:<name>`) from its card in `model_dirs` (model/model_card.py)."""
    from model import model_card  # it builds on this module's types

    if model_card.is_custom(name):
        return model_card.load_spec(name, model_dirs)
    try:
        return ZOO[name]
    except KeyError:
        raise ModelUnavailable(
            f"unknown model {name!r}; choose one of: {', '.join(ZOO)}, auto or {model_card.CUSTOM_PREFIX}<name> "
            f"(a model trained with scripts/train.py)"
        ) from None


def spec_for_architecture(architecture: str) -> ModelSpec:
    """The zoo model built on `architecture`: its preprocessing and shipped weights are what training starts from."""
    for spec in ZOO.values():
        if spec.architecture == architecture:
            return spec
    raise ModelUnavailable(f"no zoo model is built on {architecture!r}")


def resolve_runtime(spec: ModelSpec, runtime: str) -> str:
    """`auto` -> the model's preferred runtime; otherwise the runtime must be one the model has."""
    if runtime == "auto":
        return spec.default_runtime()
    if runtime not in spec.weights:
        raise ModelUnavailable(
            f"model {spec.name} has no {runtime!r} runtime; it runs with: {', '.join(spec.runtimes)}"
        )
    return runtime


def dlib_models_dir() -> Path | None:
    """The models/ folder of face-recognition-models, found without importing it (it needs pkg_resources)."""
    found = importlib.util.find_spec("face_recognition_models")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "models"


def search_dirs(spec: ModelSpec, model_dirs: Sequence[Path]) -> list[Path]:
    dirs = list(model_dirs)
    if spec.name == "dlib":
        bundled = dlib_models_dir()
        if bundled is not None:
            dirs.append(bundled)
    return dirs


def locate_weights(spec: ModelSpec, runtime: str, model_dirs: Sequence[Path]) -> Path:
    """The weights file of `spec` for `runtime`, or an error saying how to get it."""
    wf = spec.weights[runtime]
    found = find_weights(wf.filename, search_dirs(spec, model_dirs), subdir=spec.subdir or None)
    if found is not None:
        return found
    where = ", ".join(str(d) for d in model_dirs) or "(no model dir configured)"
    hint = (
        f"run `python scripts/download_weights.py {spec.name} --runtime {runtime}`"
        if wf.url
        else f"{spec.notes or 'get the file from ' + spec.upstream}"
    )
    if runtime == "onnx" and "torch" in spec.weights:
        hint += f", or export it with `python scripts/export_onnx.py {spec.name}`"
    raise ModelUnavailable(f"{spec.name} ({runtime}) needs {wf.filename} in one of: {where}; {hint}")


def locate_extra(spec: ModelSpec, key: str, model_dirs: Sequence[Path]) -> Path:
    wf = spec.extra_files[key]
    found = find_weights(wf.filename, search_dirs(spec, model_dirs), subdir=spec.subdir or None)
    if found is None:
        raise ModelUnavailable(f"{spec.name} needs {wf.filename}; install face-recognition-models (pip)")
    return found


def contract_for(spec: ModelSpec, weights_path: Path, flip: bool) -> EmbeddingContract:
    """The contract of `spec` as loaded from `weights_path` (hashed when the zoo records no identity)."""
    weights_id = spec.canonical_sha256 or sha256_file(weights_path)
    return EmbeddingContract(spec.name, spec.dim, weights_id, spec.preprocessing, flip)


def weights_present(spec: ModelSpec, model_dirs: Sequence[Path], runtime: str = "auto") -> str | None:
    """The first runtime of `spec` (or `runtime` itself) whose weights are present, or None."""
    candidates = spec.runtimes if runtime == "auto" else tuple(r for r in spec.runtimes if r == runtime)
    for runtime in candidates:
        try:
            locate_weights(spec, runtime, model_dirs)
        except ModelUnavailable:
            continue
        return runtime
    return None


def pick_auto(model_dirs: Sequence[Path], runtime: str = "auto") -> tuple[ModelSpec, str]:
    """FACEREG_MODEL=auto: the best model whose weights are present (for `runtime`), and its runtime."""
    for name in AUTO_ORDER:
        found = weights_present(ZOO[name], model_dirs, runtime)
        if found is not None:
            log.info("FACEREG_MODEL=auto picked %s (%s runtime)", name, found)
            return ZOO[name], found
    raise ModelUnavailable(
        "no embedding model has its weights present; install face-recognition-models for the dlib model, "
        "or put weights in FACEREG_MODEL_DIR (see scripts/download_weights.py)"
    )
