"""The image's per-role HEALTHCHECK: which URL each command is probed on (pure)."""

from __future__ import annotations

import pytest

from processor.healthcheck import probe_url

KAFKA = {"ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092"}


@pytest.mark.parametrize(
    ("argv", "environ", "url"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/anonymizer", "run"], KAFKA, "http://127.0.0.1:8080/health"),
        (["anonymizer", "run"], {}, None),  # a local inbox: no health server
        (["anonymizer", "serve"], {"ANONYMIZER_HTTP__PORT": "9000"}, "http://127.0.0.1:9000/health"),
        (["anonymizer", "infer"], {}, "http://127.0.0.1:8081/health"),
        (["anonymizer", "infer"], {"ANONYMIZER_HTTP__PORT": "8081"}, "http://127.0.0.1:8081/health"),
        (["tini", "--", "anonymizer", "infer", "--port", "7000"], {}, "http://127.0.0.1:7000/health"),
        (["anonymizer", "serve", "--port=7001"], {"ANONYMIZER_HTTP__PORT": "8080"}, "http://127.0.0.1:7001/health"),
        (["anonymizer", "image", ".", "--out", "/data/out"], KAFKA, None),
        (["anonymizer", "bench"], {}, None),
    ],
)
def test_each_role_is_probed_where_it_listens(argv: list[str], environ: dict[str, str], url: str | None) -> None:
    assert probe_url(argv, environ) == url
