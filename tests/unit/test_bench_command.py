"""`anonymizer bench`'s report: the parts chosen, the documented JSON shape, the original README's table measured
through the built-in detectors (which find every face of the frame at every resolution), and its text form."""

from __future__ import annotations

import json

import pytest

from processor.bench.command import PARTS, format_report, parse_parts, run_bench
from processor.bench.table import RESOLUTIONS
from processor.settings import Settings

pytestmark = pytest.mark.timeout(120)

TABLE_KEYS = {
    "detector", "model", "url", "type", "width", "height", "regions",
    "inference_ms", "anonymization_ms", "decode_ms", "encode_ms", "total_ms",
}  # fmt: skip


def test_parts_are_taken_in_the_canonical_order() -> None:
    assert parse_parts("video, table") == ("table", "video")
    assert parse_parts(",".join(reversed(PARTS))) == PARTS


@pytest.mark.parametrize("text", ["", "tables", "table,gpu"])
def test_unknown_parts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="choose among"):
        parse_parts(text)


def test_a_url_needs_its_model_and_label() -> None:
    with pytest.raises(ValueError, match="--model and --label"):
        run_bench(Settings(), ("table",), url="http://localhost:8081/", model="centerface")


def test_bomb_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="--bomb-seconds"):
        run_bench(Settings(), ("api-bombs",), bomb_seconds=0)


def test_table_report_has_the_documented_shape_and_finds_every_face() -> None:
    messages: list[str] = []
    report = run_bench(Settings(), ("table",), repeat=1, progress=messages.append)

    assert messages == ["bench: table ..."]
    assert set(report) == {"version", "started_at", "seconds", "machine", "options", "skipped", "table"}
    assert report["version"] == 1 and report["skipped"] == {}
    assert report["options"]["parts"] == ["table"]
    assert report["machine"]["packages"]["onnxruntime"] is not None
    assert report["machine"]["usable_cores"] >= 1
    rows = report["table"]
    assert [(row["model"], (row["width"], row["height"])) for row in rows] == [
        (model, size)
        for model in ("centerface", "plate_reader", "plate_cascade", "selfie_segmentation")
        for size in RESOLUTIONS
    ]
    for row in rows:
        assert set(row) == TABLE_KEYS
        assert row["url"] == "builtin"
        assert row["total_ms"] >= row["inference_ms"] + row["anonymization_ms"] > 0
    assert [row["regions"] for row in rows if row["model"] == "centerface"] == [7, 7, 7, 7], "every face, every size"
    assert json.loads(json.dumps(report)) == report

    text = format_report(report)
    assert "original README's table" in text
    assert report["machine"]["cpu"] in text
    assert text.count("centerface ") == len(RESOLUTIONS)
