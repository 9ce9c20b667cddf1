"""Tracks of boxes across frames: which boxes frame t hides, given the detections of the frames around it.

Detectors run on some frames only (keyframes, see :mod:`processor.video.keyframes`) and miss an object now and
then (motion blur, a turned head). For one configuration entry, the detections of the frames in a window around
frame t are chained into tracks, oldest first: a detection continues the track whose box (its last one, or the one
its constant velocity predicts) it overlaps most, with IoU ≥ :data:`MATCH_IOU` (or, for small boxes, is near:
:func:`continues`). A track's box in frame t is then:

- its detection, when frame t found it;
- between two of its detections: interpolated linearly (this fills the frames between keyframes and the frames
  where the detector missed it);
- up to ``reach`` frames after its last detection or before its first: predicted at constant velocity (from its
  last or first two detections in the window; zero for a track seen once), so an object is still hidden just
  before it was first found and just after it was last found.

A box that is not the frame's own detection is grown by its uncertainty: per frame away from the nearest
detection, by :data:`GROWTH` of its size, and when predicted (not interpolated) also by :data:`VELOCITY_SLACK` of
its velocity. Privacy first: when unsure, hide more. A track's box is not added when the frame's own detections
show that object already (IoU ≥ :data:`SAME_OBJECT_IOU`), nor when it nearly coincides with a box already added
(IoU ≥ :data:`DUPLICATE_IOU`), so a face found in every frame is hidden once, with its own box.

Everything here is pure (no I/O): the caller keeps the window, so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from processor.frames import Box

MATCH_IOU = 0.2
"""Overlap with a track's last or predicted box from which a detection continues that track."""

MIN_STEP = 32.0
"""A box whose centre moved at most this many pixels (either way), at a size within a factor 2, continues the
track too: boxes of small objects (a 17 px face) do not overlap after a few frames of walking."""

SAME_OBJECT_IOU = 0.3
"""Overlap with one of the frame's own boxes above which a track's box shows an object the frame found itself."""

DUPLICATE_IOU = 0.8
"""Overlap above which a track's box adds nothing to a box already added."""

GROWTH = 0.02
"""A box away from a detection grows, on each side, by this share of its width (height) per frame of distance."""

VELOCITY_SLACK = 0.5
"""A predicted box grows, on each side, by this share of its per-frame motion per frame of distance."""


@dataclass(frozen=True, slots=True)
class Observed:
    """The boxes one entry's detector found in frame ``index``."""

    index: int
    boxes: tuple[Box, ...]


@dataclass(slots=True)
class Track:
    """One object's detections, in frame order."""

    seen: list[tuple[int, Box]] = field(default_factory=list)

    def velocity(self, *, at_end: bool = True) -> tuple[float, float, float, float]:
        """Per-frame motion of (left, top, right, bottom) between its last (or first) two detections."""
        if len(self.seen) < 2:
            return (0.0, 0.0, 0.0, 0.0)
        (i, a), (j, b) = self.seen[-2:] if at_end else self.seen[:2]
        left, top, right, bottom = ((q - p) / (j - i) for p, q in zip(_edges(a), _edges(b), strict=True))
        return left, top, right, bottom

    def predicted(self, index: int) -> Box:
        """Its box in frame ``index`` after its last detection, at constant velocity (not grown)."""
        last_index, last = self.seen[-1]
        return _moved(last, self.velocity(), index - last_index)


def build_tracks(observed: Sequence[Observed]) -> list[Track]:
    """Chain the detections of frames ``observed`` (any order; each frame once) into tracks (see the module
    docstring): in each frame, the best-overlapping pairs of (track, detection) first."""
    tracks: list[Track] = []
    for frame in sorted(observed, key=lambda one: one.index):
        pairs = sorted(
            (
                (max(continues(track.seen[-1][1], box), continues(track.predicted(frame.index), box)), t, b)
                for t, track in enumerate(tracks)
                for b, box in enumerate(frame.boxes)
            ),
            reverse=True,
        )
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < MATCH_IOU:
                break
            if t in taken_tracks or b in taken_boxes:
                continue
            tracks[t].seen.append((frame.index, frame.boxes[b]))
            taken_tracks.add(t)
            taken_boxes.add(b)
        tracks.extend(Track([(frame.index, box)]) for b, box in enumerate(frame.boxes) if b not in taken_boxes)
    return tracks


def track_box(track: Track, index: int, reach: int) -> tuple[Box, int] | None:
    """The track's box in frame ``index`` (grown by its uncertainty) and its distance in frames from the nearest
    detection; None when the frame is more than ``reach`` frames beyond its ends. Distance 0 is a detection."""
    before = [(i, box) for i, box in track.seen if i <= index]
    after = [(i, box) for i, box in track.seen if i >= index]
    if before and before[-1][0] == index:
        return before[-1][1], 0
    if before and after:
        (i, a), (j, b) = before[-1], after[0]
        share = (index - i) / (j - i)
        left, top, right, bottom = (p + (q - p) * share for p, q in zip(_edges(a), _edges(b), strict=True))
        distance = min(index - i, j - index)
        middle = Box(left, top, right, bottom, a.label, max(a.confidence, b.confidence))
        return _grown(middle, distance, (0.0, 0.0, 0.0, 0.0)), distance
    if before and index - before[-1][0] <= reach:
        distance = index - before[-1][0]
        velocity = track.velocity()
        return _grown(_moved(before[-1][1], velocity, distance), distance, velocity), distance
    if after and after[0][0] - index <= reach:
        distance = after[0][0] - index
        velocity = track.velocity(at_end=False)
        return _grown(_moved(after[0][1], velocity, -distance), distance, velocity), distance
    return None


def boxes_at(index: int, observed: Sequence[Observed], reach: int) -> tuple[tuple[Box, ...], int]:
    """The boxes frame ``index`` hides for one entry, and how many of them are not its own detections.

    :param observed: the entry's detections in the frames of ``index - 2 reach … index + reach`` that were
        detected (frame ``index`` itself among them when it was); frames outside that window are ignored. The
        older half gives the tracks ending in the window their velocity.
    :param reach: how far (frames) a track is extended before its first and after its last detection.
    """
    window = [frame for frame in observed if -2 * reach <= frame.index - index <= reach]
    own = next((frame.boxes for frame in window if frame.index == index), ())
    candidates = [found for track in build_tracks(window) if (found := track_box(track, index, reach)) is not None]
    extra: list[Box] = []
    for box, distance in sorted(candidates, key=lambda candidate: candidate[1]):
        if distance == 0:
            continue
        if all(iou(box, kept) < SAME_OBJECT_IOU for kept in own) and all(
            iou(box, kept) < DUPLICATE_IOU for kept in extra
        ):
            extra.append(box)
    return own + tuple(extra), len(extra)


def continues(earlier: Box, later: Box) -> float:
    """How well ``later`` continues the object of ``earlier``: their IoU, or :data:`MATCH_IOU` when they overlap
    less but are near (:data:`MIN_STEP`) and of about one size; below MATCH_IOU: another object."""
    overlap = iou(earlier, later)
    if overlap >= MATCH_IOU:
        return overlap
    (width, height), (other_width, other_height) = _size(earlier), _size(later)
    if not (width and height and 0.5 <= other_width / width <= 2 and 0.5 <= other_height / height <= 2):
        return overlap
    dx, dy = step(earlier, later)
    return MATCH_IOU if abs(dx) <= MIN_STEP and abs(dy) <= MIN_STEP else overlap


def step(earlier: Box, later: Box) -> tuple[float, float]:
    """How far the centre moved from ``earlier`` to ``later`` (x, y)."""
    return (
        (later.left + later.right - earlier.left - earlier.right) / 2,
        (later.top + later.bottom - earlier.top - earlier.bottom) / 2,
    )


def _size(box: Box) -> tuple[float, float]:
    return abs(box.right - box.left), abs(box.bottom - box.top)


def _edges(box: Box) -> tuple[float, float, float, float]:
    return box.left, box.top, box.right, box.bottom


def _moved(box: Box, velocity: Sequence[float], frames: int) -> Box:
    left, top, right, bottom = (edge + step * frames for edge, step in zip(_edges(box), velocity, strict=True))
    return dataclasses.replace(box, left=left, top=top, right=right, bottom=bottom)


def _grown(box: Box, distance: int, velocity: Sequence[float]) -> Box:
    """``box`` grown on each side by its uncertainty at ``distance`` frames from a detection (module docstring)."""
    width, height = abs(box.right - box.left), abs(box.bottom - box.top)
    dx = distance * (GROWTH * width + VELOCITY_SLACK * max(abs(velocity[0]), abs(velocity[2])))
    dy = distance * (GROWTH * height + VELOCITY_SLACK * max(abs(velocity[1]), abs(velocity[3])))
    left, right = sorted((box.left, box.right))
    top, bottom = sorted((box.top, box.bottom))
    return dataclasses.replace(box, left=left - dx, top=top - dy, right=right + dx, bottom=bottom + dy)


def iou(first: Box, second: Box) -> float:
    """Intersection over union of two boxes (edges normalised, so inverted boxes compare by their area)."""
    a_left, a_right = sorted((first.left, first.right))
    a_top, a_bottom = sorted((first.top, first.bottom))
    b_left, b_right = sorted((second.left, second.right))
    b_top, b_bottom = sorted((second.top, second.bottom))
    width = min(a_right, b_right) - max(a_left, b_left)
    height = min(a_bottom, b_bottom) - max(a_top, b_top)
    if width <= 0 or height <= 0:
        return 0.0
    intersection = width * height
    union = (a_right - a_left) * (a_bottom - a_top) + (b_right - b_left) * (b_bottom - b_top) - intersection
    return intersection / union if union > 0 else 0.0
