"""Person templates and the identification score built on them (pure maths, shared by the services and the
offline evaluation so both score a person the same way).

A person's template is the normalised, quality-weighted mean of their face embeddings. A person's score for a
query is `w * cos(query, template) + (1 - w) * max_i cos(query, face_i)`: the template averages out what one
photo got wrong (pose, light, blur), the best face keeps a photo that matches one condition exactly. `w` is the
template weight (FACEREG_TEMPLATE_WEIGHT); 0 is the best face alone, 1 the template alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.embedders.base import l2_normalise
from model.types import FloatArray

# A face of quality 0 (a centre crop, a blurred enrollment let in with the gate off) still counts a little:
# a person with only such faces has a template.
MIN_WEIGHT = 0.05


def face_weights(qualities: Sequence[float]) -> FloatArray:
    """Each face's share in its person's template: its quality score in [0, 1], floored at MIN_WEIGHT."""
    q = np.asarray(qualities, dtype=np.float32).reshape(-1)
    return np.clip(np.nan_to_num(q, nan=0.0), MIN_WEIGHT, 1.0)


def person_template(vectors: FloatArray, weights: Sequence[float] | FloatArray) -> FloatArray:
    """The unit-length, weighted mean of a person's unit face vectors."""
    v = l2_normalise(np.asarray(vectors, dtype=np.float32).reshape(len(weights), -1))
    w = np.asarray(weights, dtype=np.float32)
    if len(v) == 0 or not np.all(w > 0):
        raise ValueError("a template needs at least one face, each with a positive weight")
    return l2_normalise((w[:, None] * v).sum(axis=0, keepdims=True))[0]


def combined_score(template_sim: FloatArray | float, best_face_sim: FloatArray | float, weight: float) -> FloatArray:
    """The person's score: `weight` on the template's cosine, the rest on the best face's."""
    return np.asarray(weight * np.asarray(template_sim) + (1.0 - weight) * np.asarray(best_face_sim), np.float32)


def templates_of(
    vectors: FloatArray, persons: Sequence[str], qualities: Sequence[float]
) -> tuple[list[str], FloatArray]:
    """Every person's template from all their faces: (person ids in first-seen order, templates as rows)."""
    order = list(dict.fromkeys(persons))
    index = {p: i for i, p in enumerate(order)}
    rows = np.asarray([index[p] for p in persons])
    w = face_weights(qualities)
    unit = l2_normalise(np.asarray(vectors, dtype=np.float32))
    sums = np.zeros((len(order), unit.shape[1]), dtype=np.float32)
    np.add.at(sums, rows, w[:, None] * unit)
    return order, l2_normalise(sums)


def score_persons(
    queries: FloatArray, vectors: FloatArray, persons: Sequence[str], qualities: Sequence[float], weight: float
) -> tuple[list[str], FloatArray]:
    """Exact scores of every query against every person: (person ids, scores of shape (queries, persons)).

    The offline evaluation uses this; the services compute the same score from the index's candidates."""
    order, templates = templates_of(vectors, persons, qualities)
    q = l2_normalise(np.asarray(queries, dtype=np.float32))
    face_sims = q @ l2_normalise(np.asarray(vectors, dtype=np.float32)).T
    index = {p: i for i, p in enumerate(order)}
    best = np.full((len(q), len(order)), -np.inf, dtype=np.float32)
    for j, p in enumerate(persons):
        col = index[p]
        best[:, col] = np.maximum(best[:, col], face_sims[:, j])
    return order, combined_score(q @ templates.T, best, weight)
