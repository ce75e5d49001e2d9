"""A test video for realtime attendance: real LFW faces passing a generated corridor, with its ground truth.

  python scripts/make_test_video.py OUT_DIR [--lfw DIR] [--seed 0] [--width 640 --height 480 --fps 25]
                                           [--seconds 40] [--enrolled 4] [--strangers 2] [--cooldown 8]

Writes OUT_DIR/video.mp4 and OUT_DIR/truth.json (services.evaluation.attendance.VideoTruth): who is visible in
which frames, each face's box per frame, and which visits must log an attendance event. People with at least
5 LFW photos are drawn from the seed; each enrolled one has 3 photos to enroll and another one walks in the
video. Faces walk across or approach (40-160 px), enter and leave, some blurred for a few frames, tilted up to
15 degrees or mirrored; one pair is in view at once; one enrolled person returns after the cooldown (an event
is due) and one within it (no event). The same seed and LFW folder give the same truth.json.

Score a run against it with services.evaluation.attendance.score_attendance. LFW defaults to
FACEREG_DATASETS/lfw (../shared/datasets/lfw).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from model.evaluation.protocols import DatasetError
from scripts.cli import parser, print_json, run
from scripts.cli_args import COUNT, bounded_float, bounded_int, existing_dir
from services.config import get_settings
from services.errors import ServiceError
from services.evaluation.attendance import TruthBox, TruthPerson, VideoTruth, Visit

Rng = np.random.Generator
Float = npt.NDArray[np.float32]

# The inner face (eyebrows to chin) in a 250x250 LFW photo: the median YuNet box of 400 people's first
# photos, which MTCNN's agrees with within 3 px. Its width is the face size, as Detection.size measures it.
TILE = 250
FACE_BOX = (78.0, 64.0, 172.0, 190.0)
FACE_W = FACE_BOX[2] - FACE_BOX[0]
FACE_ASPECT = (FACE_BOX[3] - FACE_BOX[1]) / FACE_W
FACE_CENTRE = ((FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2)
HEAD = ((125, 120), (70, 98))  # the head with hair, an ellipse (centre, semi-axes) in the photo
MIN_SIZE, MAX_SIZE = 40.0, 160.0
MIN_PHOTOS, ENROLL_PHOTOS = 5, 3
MIN_VISIBLE = 0.5  # a face counts as visible while this much of its box is inside the frame
LEAD_S, TAIL_S, GAP_S = 0.4, 0.4, 0.6  # empty corridor before the first visit, after the last, between visits
MARGIN_S = 1.0  # how far a return stays clear of the cooldown, either side
MIN_COOLDOWN_S = 6.0  # the least that holds two 2 s visits and a gap, with the margin, for a return within it
FOURCC = "mp4v"  # what the opencv-python-headless wheels' FFmpeg writes into .mp4 (no H.264 encoder there)


@dataclass(frozen=True, slots=True)
class VideoOptions:
    width: int = 640
    height: int = 480
    fps: float = 25.0
    seconds: float = 40.0
    enrolled: int = 4
    strangers: int = 2
    cooldown_s: float = 8.0
    seed: int = 0

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def max_size(self) -> float:
        """The largest face: 160 px, less in a frame too low to hold its head."""
        return min(MAX_SIZE, self.height / 3)


@dataclass(frozen=True, slots=True)
class Cast:
    """One person in the video: their LFW name, the photo that walks, the photos that enroll them."""

    name: str
    enrolled: bool
    video_image: Path
    enroll_images: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class Motion:
    """A face's path over one visit: keyframe times (seconds from the visit's start), centre and size."""

    times: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    size: tuple[float, ...]
    bob_px: float  # the up-and-down of a walking head

    def at(self, t: float) -> tuple[float, float, float]:
        cx = float(np.interp(t, self.times, self.cx))
        cy = float(np.interp(t, self.times, self.cy)) + self.bob_px * math.sin(2 * math.pi * 1.8 * t)
        return cx, cy, float(np.interp(t, self.times, self.size))


@dataclass(frozen=True, slots=True)
class Look:
    """How a visit's face differs from the photo: mirrored, tilted, a few blurred frames, lighting."""

    mirror: bool
    tilt_deg: float  # the largest in-plane rotation, either way
    blur_from: float  # seconds from the visit's start; blur_s 0: never blurred
    blur_s: float
    blur_motion: bool  # a horizontal motion blur, else a gaussian one
    blur_px: float  # kernel length or 3 sigma, in frame pixels
    gain: float

    def angle(self, t: float) -> float:
        return self.tilt_deg * (0.7 + 0.3 * math.sin(2 * math.pi * 0.6 * t))

    def blurred(self, t: float) -> bool:
        return self.blur_from <= t < self.blur_from + self.blur_s

    def blur(self, image: Float) -> Float:
        if self.blur_motion:
            length = max(3, round(self.blur_px))
            kernel = np.full((1, length), 1.0 / length, np.float32)
            return np.asarray(cv2.filter2D(image, -1, kernel), dtype=np.float32)
        return np.asarray(cv2.GaussianBlur(image, (0, 0), self.blur_px / 6.0), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    person: int  # index in the cast
    start_s: float
    duration_s: float
    expect_event: bool
    zone: str = "full"  # "left"/"right": shares the frame with another visit and keeps to its half


@dataclass(frozen=True, slots=True)
class Walker:
    """A visit as it is drawn."""

    visit: PlannedVisit
    motion: Motion
    look: Look

    def at(self, t: float) -> tuple[float, float, float] | None:
        """(cx, cy, size) at video time t; None outside the visit."""
        local = t - self.visit.start_s
        return self.motion.at(local) if 0.0 <= local <= self.visit.duration_s else None


def lfw_people(lfw_root: Path) -> list[tuple[str, list[Path]]]:
    """Every LFW person with at least MIN_PHOTOS photos, sorted by name, each with their photos sorted."""
    images = lfw_root / "images"
    if not images.is_dir():
        raise DatasetError(f"{images} does not exist: --lfw must be the LFW folder holding images/<Person>/")
    people = []
    for entry in sorted(os.scandir(images), key=lambda e: e.name):
        if entry.is_dir():
            photos = sorted(p for p in Path(entry.path).iterdir() if p.suffix.lower() == ".jpg")
            if len(photos) >= MIN_PHOTOS:
                people.append((entry.name, photos))
    return people


def choose_cast(lfw_root: Path, options: VideoOptions, rng: Rng) -> list[Cast]:
    people = lfw_people(lfw_root)
    wanted = options.enrolled + options.strangers
    if len(people) < wanted:
        raise DatasetError(f"{lfw_root} has {len(people)} people with {MIN_PHOTOS}+ photos; {wanted} are needed")
    cast = []
    for rank, index in enumerate(rng.choice(len(people), size=wanted, replace=False)):
        name, photos = people[int(index)]
        order = rng.permutation(len(photos))
        enrolled = rank < options.enrolled
        enroll = tuple(sorted(photos[int(i)] for i in order[1 : 1 + ENROLL_PHOTOS])) if enrolled else ()
        cast.append(Cast(name, enrolled, photos[int(order[0])].resolve(), tuple(p.resolve() for p in enroll)))
    return cast


def _sequence(options: VideoOptions, rng: Rng) -> tuple[list[list[PlannedVisit]], PlannedVisit | None, int]:
    """The visits as units that follow each other (times relative to the unit), the visit that joins another one
    in view (if anyone can), and the index of the unit it joins.

    Person 1 (person 0 when alone) returns within the cooldown right after their first visit, both visits short
    enough that the return ends within it; person 0 comes first (or as that pair) and returns last, after it."""
    n = options.enrolled
    gap = float(rng.uniform(0.6, 1.0))
    longest = min(3.0, (options.cooldown_s - MARGIN_S - gap) / 2)
    pair = [float(rng.uniform(2.0, longest)) for _ in range(2)]
    returner = [
        PlannedVisit(1 % n, 0.0, pair[0], True),
        PlannedVisit(1 % n, pair[0] + gap, pair[1], False),
    ]
    singles = [PlannedVisit(i, 0.0, float(rng.uniform(2.4, 3.6)), True) for i in range(2, n)]
    singles += [PlannedVisit(i, 0.0, float(rng.uniform(2.4, 3.6)), False) for i in range(n, n + options.strangers)]
    guest = singles.pop() if singles else None  # a stranger where there is one
    middle: list[list[PlannedVisit]] = [[v] for v in singles]
    if n > 1:
        middle.insert(0, [PlannedVisit(0, 0.0, float(rng.uniform(2.4, 3.2)), True)])
    # The guest joins a single visit (not the pair, whose second visit must follow closely), or walks alone.
    host = int(rng.integers(0, len(middle))) if middle else -1
    if guest is not None and host < 0:
        middle, guest = [[guest]], None
    middle.insert(int(rng.integers(1 if n > 1 else 0, len(middle) + 1)), returner)
    if host >= 0 and middle.index(returner) <= host:
        host += 1
    last = [PlannedVisit(0, 0.0, float(rng.uniform(2.4, 3.2)), True)]
    return [*middle, last], guest, host


def _place(
    units: list[list[PlannedVisit]], guest: PlannedVisit | None, host: int, gaps: list[float], cooldown_s: float
) -> list[PlannedVisit]:
    """Absolute times: units one after the other after their gap; the last one (person 0's return) also waits
    until the cooldown since their previous visit has passed with a margin. The guest starts during the host's
    first visit, and the next unit waits for both."""
    placed: list[PlannedVisit] = []
    free_at = 0.0
    for i, (unit, gap) in enumerate(zip(units, gaps, strict=True)):
        start = free_at + gap
        if i == len(units) - 1:
            last = max(v.start_s + v.duration_s for v in placed if v.person == unit[0].person)
            start = max(start, last + cooldown_s + MARGIN_S)
        shifted = [replace(v, start_s=start + v.start_s) for v in unit]
        if i == host and guest is not None:
            first = shifted[0]
            sides = ("left", "right") if guest.person % 2 else ("right", "left")
            shifted[0] = replace(first, zone=sides[0])
            joins = first.start_s + first.duration_s * 0.35
            shifted.append(replace(guest, start_s=joins, zone=sides[1]))
        placed.extend(shifted)
        free_at = max(v.start_s + v.duration_s for v in placed)
    return placed


def plan_visits(options: VideoOptions, rng: Rng) -> list[PlannedVisit]:
    """Who visits when (seconds), filling `options.seconds`; ServiceError when it is too short."""
    if options.cooldown_s < MIN_COOLDOWN_S:
        raise ServiceError(
            f"a cooldown of {options.cooldown_s:g} s is too short for a return within it: {MIN_COOLDOWN_S:g}+"
        )
    units, guest, host = _sequence(options, rng)
    tight = _place(units, guest, host, [LEAD_S, *[GAP_S] * (len(units) - 1)], options.cooldown_s)
    needed = max(v.start_s + v.duration_s for v in tight) + TAIL_S
    if needed > options.seconds:
        raise ServiceError(
            f"--seconds {options.seconds:g} is too short for {options.enrolled} enrolled and {options.strangers} "
            f"non-enrolled people with a cooldown of {options.cooldown_s:g} s: at least {math.ceil(needed)} s"
        )
    spare = (options.seconds - needed) * rng.dirichlet(np.ones(len(units)))
    gaps = [LEAD_S + float(spare[0]), *(GAP_S + float(s) for s in spare[1:])]
    placed = _place(units, guest, host, gaps, options.cooldown_s)
    late = options.seconds - TAIL_S - max(v.start_s + v.duration_s for v in placed)
    # The cooldown wait can swallow spare time before the last visit (the return after it): move that one later.
    placed[-1] = replace(placed[-1], start_s=placed[-1].start_s + max(0.0, late))
    return placed


def _motion(visit: PlannedVisit, options: VideoOptions, rng: Rng) -> Motion:
    """A walk across the frame (growing a little), or an approach from the back of the corridor (growing to
    full size) that leaves sideways; a visit sharing the frame approaches in its own half."""
    w, h, d = options.width, options.height, visit.duration_s
    big = options.max_size
    if visit.zone == "full" and rng.random() < 0.5:
        s0, s1 = float(rng.uniform(MIN_SIZE, 55.0)), float(rng.uniform(0.65, 0.85) * big)
        way = 1.0 if rng.random() < 0.5 else -1.0
        x0, x1 = w / 2 - way * (w / 2 + s0 * 0.6), w / 2 + way * (w / 2 + s1 * 0.6)
        y0, y1 = h * rng.uniform(0.3, 0.4), h * rng.uniform(0.42, 0.52)
        return Motion((0.0, d), (x0, x1), (y0, y1), (s0, s1), bob_px=float(rng.uniform(1.0, 4.0)))
    centre = {"left": (0.2, 0.32), "right": (0.68, 0.8), "full": (0.35, 0.65)}[visit.zone]
    x0 = w * rng.uniform(*centre)
    way = {"left": -1.0, "right": 1.0}.get(visit.zone, 1.0 if x0 > w / 2 else -1.0)
    s0, s1 = float(rng.uniform(MIN_SIZE, 55.0)), float(rng.uniform(0.8, 1.0) * big)
    near = d * rng.uniform(0.7, 0.8)  # the face stops growing here and turns out of view
    x_near = x0 + way * w * rng.uniform(0.02, 0.08)
    y0, y_near = h * rng.uniform(0.3, 0.38), h * rng.uniform(0.45, 0.52)
    x_out = w / 2 + way * (w / 2 + s1 * 0.7)
    grow = [near * f for f in (0.0, 0.4, 0.7, 1.0)]
    sizes = [s0 + (s1 - s0) * f**1.6 for f in (0.0, 0.4, 0.7, 1.0)]  # perspective: faster when closer
    xs = [x0 + (x_near - x0) * f for f in (0.0, 0.4, 0.7, 1.0)]
    ys = [y0 + (y_near - y0) * f for f in (0.0, 0.4, 0.7, 1.0)]
    return Motion((*grow, d), (*xs, x_out), (*ys, y_near), (*sizes, s1), bob_px=float(rng.uniform(0.0, 2.0)))


def _look(visit: PlannedVisit, rng: Rng) -> Look:
    blurred = rng.random() < 0.6
    return Look(
        mirror=bool(rng.random() < 0.3),
        tilt_deg=float(rng.uniform(-15.0, 15.0)) if rng.random() < 0.5 else 0.0,
        blur_from=float(rng.uniform(0.3, 0.8) * visit.duration_s),
        blur_s=float(rng.uniform(0.15, 0.3)) if blurred else 0.0,
        blur_motion=bool(rng.random() < 0.5),
        blur_px=float(rng.uniform(6.0, 14.0)),
        gain=float(rng.uniform(0.85, 1.15)),
    )


def background(options: VideoOptions, rng: Rng) -> Float:
    """A corridor: a shaded wall with doors and posters, a floor in perspective, blotchy and fine texture."""
    w, h = options.width, options.height
    wall = rng.uniform(90, 200, size=3)
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (wall * (1.1 - 0.35 * ys)) * np.ones((1, w, 1), np.float32)
    horizon = int(h * rng.uniform(0.62, 0.72))
    vanish = (int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.45)))
    floor = np.array([[0, horizon], [w, horizon], [w, h], [0, h]], np.int32)
    cv2.fillPoly(img, [floor], rng.uniform(40, 140, size=3).tolist())
    line_colour = rng.uniform(20, 90, size=3).tolist()
    for x in np.linspace(-w, 2 * w, 9):
        end = (int(x), h)
        start_t = (horizon - vanish[1]) / (h - vanish[1])  # where the line from the vanishing point meets the floor
        start = (int(vanish[0] + (end[0] - vanish[0]) * start_t), horizon)
        cv2.line(img, start, end, line_colour, 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 4))):  # doors
        dw, dh = int(w * rng.uniform(0.1, 0.16)), int(horizon * rng.uniform(0.55, 0.75))
        x = int(rng.uniform(0, w - dw))
        colour = rng.uniform(30, 120, size=3)
        cv2.rectangle(img, (x - 6, horizon - dh - 6), (x + dw + 6, horizon), (colour * 0.6).tolist(), -1)
        cv2.rectangle(img, (x, horizon - dh), (x + dw, horizon), colour.tolist(), -1)
        cv2.circle(img, (x + dw - 10, horizon - dh // 2), 4, (200, 200, 180), -1)
    for _ in range(int(rng.integers(1, 4))):  # posters and signs
        pw, ph = int(w * rng.uniform(0.05, 0.12)), int(h * rng.uniform(0.05, 0.14))
        x, y = int(rng.uniform(0, w - pw)), int(rng.uniform(0.08, 0.4) * h)
        cv2.rectangle(img, (x, y), (x + pw, y + ph), rng.uniform(0, 255, size=3).tolist(), -1)
    blotches = cv2.resize(rng.normal(0, 12, (h // 32 + 1, w // 32 + 1)).astype(np.float32), (w, h))[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 8, (h, w, 3)).astype(np.float32), (0, 0), 1.0)
    return np.clip(img + blotches + grain, 0, 255).astype(np.float32)


def head_mask() -> Float:
    """A soft ellipse over the head of an LFW photo (1 inside, fading to 0 over ~12 px)."""
    mask = np.zeros((TILE, TILE), np.float32)
    cv2.ellipse(mask, HEAD[0], HEAD[1], 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), 5.0), dtype=np.float32)


def read_photo(path: Path) -> Float:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (TILE, TILE):
        raise DatasetError(f"{path} is not a {TILE}x{TILE} LFW photo")
    return image.astype(np.float32)


def face_box(cx: float, cy: float, size: float, options: VideoOptions) -> tuple[float, ...] | None:
    """The visible part of a face box centred at (cx, cy), rounded to 0.1 px; None when less than MIN_VISIBLE
    of it is inside the frame. A tilted face keeps its upright box, about what detectors draw."""
    half_w, half_h = size / 2, size * FACE_ASPECT / 2
    full = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    x1, y1 = max(full[0], 0.0), max(full[1], 0.0)
    x2, y2 = min(full[2], float(options.width)), min(full[3], float(options.height))
    if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) < MIN_VISIBLE * 4 * half_w * half_h:
        return None
    return tuple(round(v, 1) for v in (x1, y1, x2, y2))


def paste(
    frame: Float,
    photo: Float,
    mask: Float,
    state: tuple[float, float, float],
    angle: float,
    gain: float,
    blur: Look | None,
) -> None:
    """Warp the photo so its inner face is `size` px wide at (cx, cy), tilted by `angle`, and blend it in
    (blurred as `blur` says, if given)."""
    cx, cy, size = state
    scale = size / FACE_W
    matrix = np.asarray(cv2.getRotationMatrix2D(FACE_CENTRE, angle, scale), dtype=np.float64)
    matrix[:, 2] += (cx - FACE_CENTRE[0], cy - FACE_CENTRE[1])
    corners = cv2.transform(np.array([[[0, 0], [TILE, 0], [0, TILE], [TILE, TILE]]], np.float32), matrix)[0]
    h, w = frame.shape[:2]
    x1, y1 = (max(0, math.floor(v)) for v in corners.min(axis=0))
    x2, y2 = (min(limit, math.ceil(v)) for limit, v in zip((w, h), corners.max(axis=0), strict=True))
    if x2 <= x1 or y2 <= y1:
        return
    matrix[:, 2] -= (x1, y1)
    size_roi = (x2 - x1, y2 - y1)
    face = np.asarray(
        cv2.warpAffine(photo, matrix, size_roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float32
    )
    alpha = np.asarray(cv2.warpAffine(mask, matrix, size_roi, flags=cv2.INTER_LINEAR, borderValue=0.0), np.float32)
    if blur is not None:
        face, alpha = blur.blur(face), blur.blur(alpha)
    alpha = alpha[..., None]
    roi = frame[y1:y2, x1:x2]
    roi[:] = roi * (1.0 - alpha) + face * gain * alpha


def _truth(options: VideoOptions, cast: list[Cast], boxes: list[TruthBox], visits: list[PlannedVisit]) -> VideoTruth:
    """Each visit's frames are those where its face is visible (its boxes)."""
    people = []
    for index, person in enumerate(cast):
        spans = []
        for visit in (v for v in visits if v.person == index):
            first = math.ceil(visit.start_s * options.fps)
            last = math.floor((visit.start_s + visit.duration_s) * options.fps)
            frames = [b.frame for b in boxes if b.name == person.name and first <= b.frame <= last]
            if frames:
                spans.append(Visit(min(frames), max(frames), visit.expect_event))
        people.append(
            TruthPerson(
                name=person.name,
                enrolled=person.enrolled,
                enroll_images=tuple(map(str, person.enroll_images)),
                video_image=str(person.video_image),
                visits=tuple(spans),
            )
        )
    return VideoTruth(
        fps=options.fps,
        frames=options.frames,
        width=options.width,
        height=options.height,
        cooldown_s=options.cooldown_s,
        seed=options.seed,
        people=tuple(people),
        boxes=tuple(boxes),
    )


def draw(frame: Float, t: float, walkers: list[Walker], photos: list[Float], mask: Float) -> None:
    """Every face in view at video time t, the nearer (larger) over the farther."""
    here = [(state, w) for w in walkers if (state := w.at(t)) is not None]
    for state, walker in sorted(here, key=lambda item: item[0][2]):
        local, look = t - walker.visit.start_s, walker.look
        photo = photos[walker.visit.person]
        photo = np.ascontiguousarray(photo[:, ::-1]) if look.mirror else photo
        paste(frame, photo, mask, state, look.angle(local), look.gain, look if look.blurred(local) else None)


def make_video(out_dir: Path, lfw_root: Path, options: VideoOptions) -> VideoTruth:
    """Write out_dir/video.mp4, out_dir/truth.json and out_dir/enroll/ (the enrolled people's other photos);
    return the truth."""
    rng = np.random.default_rng(options.seed)
    cast = choose_cast(lfw_root, options, rng)
    walkers = [Walker(v, _motion(v, options, rng), _look(v, rng)) for v in plan_visits(options, rng)]
    scene = background(options, rng)
    mask = head_mask()
    photos = [read_photo(person.video_image) for person in cast]
    grain = np.random.default_rng([options.seed, 1])  # sensor noise: a few frames' worth, taken in turn
    noise = [grain.normal(0.0, 2.0, scene.shape).astype(np.float32) for _ in range(7)]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "video.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*FOURCC), options.fps, (options.width, options.height))
    if not writer.isOpened():
        raise DatasetError(f"OpenCV cannot write {FOURCC} video to {path}")
    boxes: list[TruthBox] = []
    try:
        for index in range(options.frames):
            t = index / options.fps
            frame = scene + noise[index % len(noise)]
            draw(frame, t, walkers, photos, mask)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
            for walker in walkers:
                state = walker.at(t)
                box = face_box(*state, options) if state is not None else None
                if box is not None:
                    boxes.append(TruthBox(index, cast[walker.visit.person].name, *box))
    finally:
        writer.release()
    truth = _truth(options, cast, boxes, [w.visit for w in walkers])
    truth.validate()
    truth.save(out_dir / "truth.json")
    write_enroll_folder(truth, out_dir / "enroll")
    return truth


def write_enroll_folder(truth: VideoTruth, folder: Path) -> None:
    """Copies of the enrolled people's enrollment photos as <person>/<images>, for `build_database.py`."""
    for person in truth.people:
        if person.enrolled:
            (folder / person.name).mkdir(parents=True, exist_ok=True)
            for image in map(Path, person.enroll_images):
                shutil.copyfile(image, folder / person.name / image.name)


def main() -> int:
    cli = parser(__doc__)
    cli.add_argument("out_dir", type=Path, help="where video.mp4 and truth.json go (created)")
    cli.add_argument("--lfw", type=existing_dir, help="the LFW folder (default: FACEREG_DATASETS/lfw)")
    cli.add_argument("--seed", type=bounded_int(0), default=0)
    cli.add_argument("--width", type=bounded_int(320, 3840), default=640)
    cli.add_argument("--height", type=bounded_int(240, 2160), default=480)
    cli.add_argument("--fps", type=bounded_float(5.0, 120.0), default=25.0)
    cli.add_argument("--seconds", type=bounded_float(5.0, 3600.0), default=40.0)
    cli.add_argument("--enrolled", type=bounded_int(1, 100), default=4)
    cli.add_argument("--strangers", type=COUNT, default=2, help="people who are not enrolled")
    cli.add_argument(
        "--cooldown", type=bounded_float(MIN_COOLDOWN_S, 3600.0), default=8.0, help="seconds (the script's)"
    )
    args = cli.parse_args()
    lfw = args.lfw
    if lfw is None:
        datasets = get_settings().datasets
        if datasets is None:
            cli.error("no datasets folder: pass --lfw DIR or set FACEREG_DATASETS")
        lfw = datasets / "lfw"
    options = VideoOptions(
        width=args.width,
        height=args.height,
        fps=args.fps,
        seconds=args.seconds,
        enrolled=args.enrolled,
        strangers=args.strangers,
        cooldown_s=args.cooldown,
        seed=args.seed,
    )
    truth = make_video(args.out_dir, lfw, options)
    print_json(
        {
            "video": str(args.out_dir / "video.mp4"),
            "truth": str(args.out_dir / "truth.json"),
            "frames": truth.frames,
            "people": len(truth.people),
            "visits": sum(len(p.visits) for p in truth.people),
            "boxes": len(truth.boxes),
        }
    )
    return 0


if __name__ == "__main__":
    run(main)
