"""What users tune per run of ``anonymizer image`` and ``video``: flags named after the settings they override.

Each flag carries the name of its setting (``--box-scale`` is ``output.box_scale``, i.e. ``ANONYMIZER_OUTPUT__
BOX_SCALE``) and its help is that setting's description, so flags and environment variables cannot drift; the names
deface and EgoBlur users know are aliases (``--thresh``, ``--scale``, ``--mask-scale``, ``--preview``). The
technique and degree are not settings but parts of the configuration: ``--technique``/``--degree`` rewrite its
entries. Per-label values are ``LABEL=VALUE``; a bare ``VALUE`` applies to every label of the configuration.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from processor.anonymize.registry import is_technique, technique_names
from processor.settings import BuiltinSettings, OutputSettings, Settings, VideoSettings
from schemas.config import UserConfiguration

NONE = "none"
"""``--technique none``: the regions are found (and drawn with ``--preview``) but left as they are (degree 0)."""


class TuningError(ValueError):
    """A flag's value that its setting refuses; the message names the flag."""


@dataclass(frozen=True, slots=True)
class PerLabel:
    """``LABEL=VALUE`` (label given) or ``VALUE`` (label None: every label of the configuration)."""

    label: str | None
    value: str


def add_tuning_flags(parser: argparse.ArgumentParser, *, video: bool) -> None:
    group = parser.add_argument_group("what is hidden, and how (override settings and the configuration)")

    def per_label(*names: str, value: str, help: str) -> None:
        group.add_argument(*names, action="append", type=_per_label, metavar=f"[LABEL=]{value}", help=help)

    group.add_argument(
        "--detector-preset",
        choices=("fast", "balanced", "thorough"),
        help=_help(BuiltinSettings, "preset"),
    )
    per_label("--min-score", "--thresh", value="S", help=_help(OutputSettings, "min_score"))
    group.add_argument(
        "--face-max-side", "--scale", type=int, metavar="PX", help=_help(BuiltinSettings, "face_max_side")
    )
    per_label("--box-scale", "--mask-scale", value="F", help=_help(OutputSettings, "box_scale"))
    group.add_argument("--boxes", action="store_true", help="hide rectangles, not ellipses (output.ellipse_labels=[])")
    per_label(
        "--technique",
        "--replacewith",
        value="NAME",
        help=f"technique per label or for all: {', '.join(technique_names())}, solid:RRGGBB or {NONE} (find, "
        "leave as is)",
    )
    per_label("--degree", value="D", help="degree per label or for all, 0 (unchanged) … 1 (hides most)")
    group.add_argument(
        "--keep-metadata",
        action=argparse.BooleanOptionalAction,
        help=_help(OutputSettings, "keep_metadata"),
    )
    group.add_argument(
        "--draw-regions", "--preview", action="store_true", default=None, help=_help(OutputSettings, "draw_regions")
    )
    if video:
        keep_audio = _help(VideoSettings, "keep_audio")
        group.add_argument("--keep-audio", action=argparse.BooleanOptionalAction, help=keep_audio)


def apply_tuning(
    arguments: argparse.Namespace, settings: Settings, configuration: UserConfiguration
) -> tuple[Settings, UserConfiguration]:
    """The settings and configuration with the flags applied; raises TuningError naming a refused flag."""
    labels = sorted({entry.class_name for entry in configuration.sensitive_info})
    output: dict[str, Any] = {}
    builtin: dict[str, Any] = {}
    if arguments.min_score:
        scores = _floats("--min-score", arguments.min_score, labels)
        output["min_score"] = settings.output.min_score | scores
        if "face" in scores:  # the built-in face detector's own candidate threshold follows (lower finds more)
            builtin["face_threshold"] = scores["face"]
    if arguments.box_scale:
        output["box_scale"] = settings.output.box_scale | _floats("--box-scale", arguments.box_scale, labels)
    if arguments.boxes:
        output["ellipse_labels"] = frozenset()
    if arguments.keep_metadata is not None:
        output["keep_metadata"] = arguments.keep_metadata
    if arguments.draw_regions:
        output["draw_regions"] = True
    if arguments.detector_preset is not None:
        builtin["preset"] = arguments.detector_preset
    if arguments.face_max_side is not None:
        builtin["face_max_side"] = arguments.face_max_side
    video: dict[str, Any] = {}
    if getattr(arguments, "keep_audio", None) is not None:
        video["keep_audio"] = arguments.keep_audio
    tuned = settings.model_copy(
        update={
            "output": _section(settings.output, output, "output"),
            "builtin": _section(settings.builtin, builtin, "builtin"),
            "video": _section(settings.video, video, "video"),
        }
    )
    return tuned, _tuned_configuration(arguments, configuration, labels)


def _tuned_configuration(
    arguments: argparse.Namespace, configuration: UserConfiguration, labels: list[str]
) -> UserConfiguration:
    techniques = _per_label_values(arguments.technique or [], labels)
    for name in techniques.values():
        if name != NONE and not is_technique(name):
            known = ", ".join([*technique_names(), "solid:RRGGBB", NONE])
            raise TuningError(f"--technique: unknown technique {name!r}; known: {known}")
    degrees = _floats("--degree", arguments.degree or [], labels)
    entries = []
    for entry in configuration.sensitive_info:
        changes: dict[str, Any] = {}
        technique = techniques.get(entry.class_name)
        if technique == NONE:
            changes["anonymization_degree"] = 0.0
        elif technique is not None:
            changes["anonymization_technique"] = technique
        if entry.class_name in degrees and technique != NONE:
            changes["anonymization_degree"] = degrees[entry.class_name]
        entries.append(entry.model_dump() | changes)
    try:
        return UserConfiguration.model_validate({"sensitive_info": entries})
    except ValidationError as error:
        raise TuningError("--degree: " + "; ".join(e["msg"] for e in error.errors())) from None


def _per_label(text: str) -> PerLabel:
    label, equals, value = text.rpartition("=")
    if equals and not label:
        raise argparse.ArgumentTypeError(f"{text!r}: a label before '=' (e.g. face=0.5), or a value alone")
    return PerLabel(label or None, value)


def _per_label_values(values: list[PerLabel], labels: list[str]) -> dict[str, str]:
    """label → value; a value without label applies to every label, and per-label values given later win."""
    chosen: dict[str, str] = {}
    for item in values:
        targets = labels if item.label is None else [item.label]
        chosen.update(dict.fromkeys(targets, item.value))
    return chosen


def _floats(flag: str, values: list[PerLabel], labels: list[str]) -> dict[str, float]:
    chosen: dict[str, float] = {}
    for label, value in _per_label_values(values, labels).items():
        try:
            chosen[label] = float(value)
        except ValueError:
            raise TuningError(f"{flag}: {value!r} is not a number") from None
    return chosen


def _section(section: BaseModel, changes: dict[str, Any], name: str) -> Any:
    """``section`` with ``changes``, validated as the environment variables would be (from the values given
    explicitly, so that a preset changed here fills in the rest)."""
    if not changes:
        return section
    try:
        return type(section).model_validate(section.model_dump(exclude_unset=True) | changes)
    except ValidationError as error:
        raise TuningError(
            "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        ) from None


def _help(section: type[BaseModel], field: str) -> str:
    description = section.model_fields[field].description or ""
    setting = {OutputSettings: "output", BuiltinSettings: "builtin", VideoSettings: "video"}[section]
    return f"{description} (setting {setting}.{field})"
