"""The per-run flags as pure functions: flags → settings and configuration, refused values named by their flag."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from processor.anonymize.registry import get_technique, is_technique
from processor.configuration import default_configuration, parse_configuration
from processor.errors import InvalidConfiguration
from processor.settings import Settings
from processor.tuning import TuningError, add_tuning_flags, apply_tuning


def parsed(*flags: str, video: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_tuning_flags(parser, video=video)
    return parser.parse_args(list(flags))


def test_no_flag_changes_nothing() -> None:
    settings, configuration = Settings(), default_configuration()
    assert apply_tuning(parsed(), settings, configuration) == (settings, configuration)


def test_per_label_and_bare_values_and_the_later_flag_wins() -> None:
    settings, configuration = apply_tuning(
        parsed("--thresh", "0.4", "--min-score", "face=0.6", "--mask-scale", "license_plate=1.2", "--boxes"),
        Settings(),
        default_configuration(),
    )
    assert settings.output.min_score == {"face": 0.6, "license_plate": 0.4}
    assert settings.builtin.face_threshold == 0.6
    assert settings.output.box_scale == {"face": 2.2, "license_plate": 1.2}
    assert settings.output.ellipse_labels == frozenset()
    assert configuration == default_configuration()


def test_technique_degree_and_none_rewrite_the_entries() -> None:
    _, configuration = apply_tuning(
        parsed("--technique", "pixelating", "--technique", "license_plate=none", "--degree", "0.5"),
        Settings(),
        default_configuration(),
    )
    by_label = {entry.class_name: entry for entry in configuration.sensitive_info}
    assert (by_label["face"].anonymization_technique, by_label["face"].anonymization_degree) == ("pixelating", 0.5)
    assert (by_label["license_plate"].anonymization_technique, by_label["license_plate"].anonymization_degree) == (
        "blurring",
        0.0,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--thresh", "face=high"), "--min-score: 'high' is not a number"),
        (("--thresh", "1.5"), "output.min_score.face: Input should be less than or equal to 1"),
        (("--scale", "10"), "builtin.face_max_side: Input should be greater than or equal to 64"),
        (("--technique", "swirl"), "--technique: unknown technique 'swirl'"),
        (("--degree", "2"), "--degree: Input should be less than or equal to 1"),
    ],
)
def test_refused_values_name_their_flag_or_setting(flags: tuple[str, ...], message: str) -> None:
    with pytest.raises(TuningError, match=re.escape(message)):
        apply_tuning(parsed(*flags), Settings(), default_configuration())


def test_keep_audio_is_a_video_flag() -> None:
    settings, _ = apply_tuning(parsed("--no-keep-audio", video=True), Settings(), default_configuration())
    assert settings.video.keep_audio is False
    with pytest.raises(SystemExit):
        parsed("--no-keep-audio")


def test_solid_colour_paints_the_given_colour_and_mixes_by_degree() -> None:
    patch = np.full((4, 6, 3), 100, np.uint8)
    assert get_technique("solid:ff8000")(patch.copy(), 1.0).tolist() == np.full((4, 6, 3), [0, 128, 255]).tolist()
    assert get_technique("solid:#000000")(patch.copy(), 0.5)[0, 0].tolist() == [50, 50, 50]
    assert is_technique("solid:A0b1C2") and not is_technique("solid:red") and not is_technique("solid:fff")


def test_configurations_accept_a_solid_colour_and_name_a_bad_one() -> None:
    entry = (
        '{"model_name": "centerface", "class_name": "face", "inference_type": "detection", "anonymization_degree": 1'
    )
    assert parse_configuration(f'{{"sensitive_info": [{entry}, "anonymization_technique": "solid:00ff00"}}]}}')
    with pytest.raises(InvalidConfiguration, match=r"unknown technique 'solid:green'.*solid:RRGGBB"):
        parse_configuration(f'{{"sensitive_info": [{entry}, "anonymization_technique": "solid:green"}}]}}')


def test_a_detector_preset_fills_the_settings_not_given_and_explicit_ones_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANONYMIZER_BUILTIN__PRESET", "thorough")
    monkeypatch.setenv("ANONYMIZER_BUILTIN__NANODET_TILING", "true")
    from_environment = Settings().builtin
    assert (from_environment.face_max_side, from_environment.plate_whole_frame) == (1920, True)
    assert (from_environment.nanodet_stage_tile, from_environment.plate_crop_side) == (960, 800)
    settings, _ = apply_tuning(parsed("--detector-preset", "fast"), Settings(), default_configuration())
    fast = settings.builtin
    assert (fast.preset, fast.face_max_side, fast.plate_whole_frame) == ("fast", 960, False), "the new preset's values"
    assert fast.nanodet_stage_tile is None, "fast: vehicles for plates in the whole frame only"
    assert fast.nanodet_tiling is True, "given explicitly: the preset does not change it"
    settings, _ = apply_tuning(
        parsed("--detector-preset", "fast", "--scale", "800"), Settings(), default_configuration()
    )
    assert settings.builtin.face_max_side == 800
