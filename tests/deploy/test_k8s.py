"""deploy/k8s, checked offline: every core manifest against the Kubernetes schemas
(kubernetes-validate, pinned to one Kubernetes version), the pod templates inside the CRDs
(TFJob, InferenceService) as Kubernetes pod templates, and the names, ports, paths, files,
labels and flags that must agree across the manifests, the Dockerfile, `facegan export`,
`facegan serve` and the client."""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from conftest import ROOT
from test_deploy import dockerfile_stages, env

from facegan.cli import build_parser
from facegan.client.protocol import DEFAULT_PORT
from facegan.serving.batching import parse_batching_parameters
from facegan.serving.config_files import metrics_path
from facegan.training import cluster
from facegan.versions import DEFAULT_MODEL_NAME

K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.33.0"  # the oldest Kubernetes release these manifests are written for (GA: grpc probes, autoscaling/v2)
REST_PORT = 8501  # TF Serving's usual --rest_api_port (the Dockerfile and compose use it too)


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_manifests() -> dict[str, list[dict]]:
    return {
        str(p.relative_to(K8S)): documents(p) for p in sorted(K8S.rglob("*.yaml")) if p.name != "kustomization.yaml"
    }


def by_kind(kind: str, name: str) -> dict:
    found = [
        d for docs in all_manifests().values() for d in docs if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "PersistentVolumeClaim", "Job"}


@pytest.mark.parametrize("path", sorted(all_manifests()))
def test_core_manifests_validate_against_the_kubernetes_schemas(path):
    docs = all_manifests()[path]
    assert docs
    for doc in docs:
        if doc["kind"] in CORE_KINDS:
            assert kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        else:
            assert doc["kind"] in ("TFJob", "InferenceService"), doc["kind"]


def validate_pod_template(template: dict) -> None:
    """A CRD's embedded pod template, as a core v1 PodTemplate (the schema Kubernetes applies to it)."""
    wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"}, "template": template}
    kubernetes_validate.validate(wrapper, KUBERNETES, strict=True)


def test_tfjob_structure_and_pod_template():
    job = by_kind("TFJob", "facegan-train")
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert set(job["spec"]["tfReplicaSpecs"]) == {"Worker"}  # worker 0 is the chief (facegan.training.cluster)
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] >= 2 and worker["restartPolicy"] in ("Always", "OnFailure", "Never", "ExitCode")
    validate_pod_template(worker["template"])
    (container,) = worker["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"  # the container the operator manages
    args = build_parser().parse_args(container["args"])
    assert args.command == "train" and args.train__strategy == "multiworker" and args.auto_resume and args.run_dir
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(args.run_dir).parent) in mounts and str(Path(args.data__path).parent) in mounts


def test_jax_indexed_job_wires_the_coordinator():
    job = by_kind("Job", "facegan-train-jax")
    service = by_kind("Service", "facegan-train-jax")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    variables = {e["name"]: e.get("value") for e in container["env"]}
    assert variables["KERAS_BACKEND"] == "jax" and int(variables[cluster.NUM_PROCESSES]) == spec["completions"]
    host, port = variables[cluster.COORDINATOR].rsplit(":", 1)
    assert host == f"{job['metadata']['name']}-0.{pod['subdomain']}" and pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and int(port) in [p["port"] for p in service["spec"]["ports"]]
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]}  # the label the Job controller sets
    # what facegan reads in pod 1 of the Job (Kubernetes adds JOB_COMPLETION_INDEX)
    task = cluster.jax_task({**variables, cluster.JOB_INDEX: "1"})
    assert task.workers == spec["completions"] and not task.chief
    args = build_parser().parse_args(container["args"])
    assert args.train__strategy == "data-parallel" and args.auto_resume
    assert container["image"].split(":")[0] == "facegan-trainer-jax" and "trainer-jax" in dockerfile_stages()


def test_inferenceservice_structure():
    isvc = by_kind("InferenceService", "facegan")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = isvc["spec"]["predictor"]
    tf = predictor["model"]
    assert tf["modelFormat"] == {"name": "tensorflow"}
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"  # HPA on cpu
    assert tf["runtimeVersion"] == serving_image_version()
    assert tf["storageUri"].split("://")[0] in ("pvc", "gs", "s3")
    assert tf["storageUri"].endswith("/facegan")  # the folder of numbered versions
    container = {k: v for k, v in tf.items() if k not in ("modelFormat", "runtimeVersion", "storageUri")}
    pod = {
        k: v
        for k, v in predictor.items()
        if k not in ("model", "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")
    }
    validate_pod_template({"spec": {**pod, "containers": [{"name": "kserve-container", "image": "x", **container}]}})
    mounts = {m["name"]: m["mountPath"] for m in tf["volumeMounts"]}
    volumes = {v["name"]: v["configMap"]["name"] for v in predictor["volumes"]}
    generated = kustomize_config_maps()
    for arg in tf["args"]:
        if arg.startswith(("--batching_parameters_file=", "--monitoring_config_file=")):
            path = Path(arg.split("=", 1)[1])
            (volume,) = [name for name, mount in mounts.items() if mount == str(path.parent)]
            assert path.name in generated[volumes[volume]]
    assert "/v1/models/facegan" in " ".join(tf["readinessProbe"]["exec"]["command"])


def serving_image_version() -> str:
    return dockerfile_stages()["serving"]["from"].split(":")[1]


def kustomize_config_maps() -> dict[str, dict[str, str]]:
    """{ConfigMap name: {file name: text}} as `kubectl apply -k deploy/k8s` creates them."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    maps = {}
    for generator in kustomization["configMapGenerator"]:
        assert generator["options"]["disableNameSuffixHash"]  # fixed names: KServe mounts them too
        maps[generator["name"]] = {Path(f).name: (K8S / f).read_text() for f in generator["files"]}
    return maps


def test_kustomization_lists_what_exists():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    maps = kustomize_config_maps()
    parse_batching_parameters(maps["facegan-serving-config"]["batching_parameters.txt"])
    assert "model_config_list" in maps["facegan-models-config"]["models.config"]


def serving_container() -> tuple[dict, dict]:
    deployment = by_kind("Deployment", "facegan-serving")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return deployment, container


def flags(container) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])


def test_serving_deployment_agrees_with_dockerfile_export_and_serve(tmp_path):
    deployment, container = serving_container()
    pod = deployment["spec"]["template"]["spec"]
    assert container["image"] == f"tensorflow/serving:{serving_image_version()}"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    given = flags(container)
    assert ports == {"grpc": DEFAULT_PORT, "http": REST_PORT}
    assert int(given["port"]) == DEFAULT_PORT and int(given["rest_api_port"]) == REST_PORT
    # every file flag points into a mounted ConfigMap that holds that file
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    generated = kustomize_config_maps()
    files = {}
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        path = Path(given[flag])
        volume = volumes[mounts[str(path.parent)]]
        files[flag] = generated[volume["configMap"]["name"]][path.name]
    # models.config: the model name `facegan export` writes and serve/clients default to, on the models mount
    model_name = DEFAULT_MODEL_NAME  # what `facegan export` names the model by default
    config = files["model_config_file"]
    assert f'name: "{model_name}"' in config
    models_mount = next(
        m["mountPath"] for m in container["volumeMounts"] if volumes[m["name"]].get("persistentVolumeClaim")
    )
    assert f'base_path: "{models_mount}/{model_name}"' in config
    assert env("serving")["MODEL_BASE_PATH"] == models_mount  # the image's own layout: /models/<name>
    # the same file reads in facegan serve (the path checks aside)
    local = tmp_path / "models.config"
    local.write_text(config.replace(f"{models_mount}/{model_name}", str(tmp_path)))
    serve = build_parser().parse_args(
        [
            "serve",
            "--model-config-file",
            str(local),
            "--rest-api-port",
            str(REST_PORT),
            "--monitoring-config-file",
            str(tmp_path / "monitoring.config"),
            "--model-config-file-poll-wait-seconds",
            given["model_config_file_poll_wait_seconds"],
        ]
    )
    assert serve.port == DEFAULT_PORT
    (tmp_path / "monitoring.config").write_text(files["monitoring_config_file"])
    path = metrics_path(tmp_path / "monitoring.config")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == path and int(annotations["prometheus.io/port"]) == REST_PORT
    # probes ask the model's REST status for AVAILABLE; liveness only needs the gRPC port
    for probe in ("startupProbe", "readinessProbe"):
        command = " ".join(container[probe]["exec"]["command"])
        assert f"/dev/tcp/127.0.0.1/{REST_PORT}" in command and f"/v1/models/{model_name}" in command
        assert "AVAILABLE" in command
    assert container["livenessProbe"]["tcpSocket"]["port"] == "grpc"
    # hardening
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_service_hpa_pdb_and_demo_point_at_the_serving_pods():
    deployment, container = serving_container()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service", "facegan-serving")
    assert set(service["spec"]["selector"].items()) <= set(pod_labels.items())
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": DEFAULT_PORT, "http": REST_PORT}
    hpa = by_kind("HorizontalPodAutoscaler", "facegan-serving")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    pdb = by_kind("PodDisruptionBudget", "facegan-serving")
    assert set(pdb["spec"]["selector"]["matchLabels"].items()) <= set(pod_labels.items())
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can always proceed
    demo = by_kind("Deployment", "facegan-demo")
    (demo_container,) = demo["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(demo_container["args"])
    assert args.command == "demo" and args.server == f"{service['metadata']['name']}:{DEFAULT_PORT}"
    assert f'key: "{args.label}"' in kustomize_config_maps()["facegan-models-config"]["models.config"]
    demo_port = {p["name"]: p["containerPort"] for p in demo_container["ports"]}["http"]
    assert demo_port == args.port and args.host == "0.0.0.0"
    assert demo["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65534  # the image's USER (nobody)
    assert ["USER", "65534:65534"] in [[k, r] for k, r in dockerfile_stages()["demo"]["instructions"]]
    assert demo_container["image"].split(":")[0] == "facegan-demo"
    demo_service = by_kind("Service", "facegan-demo")
    assert demo_service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_deploy_page_names_files_that_exist():
    page = (ROOT / "docs" / "deploy.md").read_text()
    section = page.split("## Scale out", 1)[1]
    named = {path.rstrip(".") for path in re.findall(r"deploy/k8s[\w./-]*", section)}
    assert len(named) >= 6
    for path in named:
        assert (ROOT / path).exists(), path


# KServe's kserve-tensorflow-serving ClusterServingRuntime (config/runtimes/kserve-tensorflow-serving.yaml
# in kserve/kserve) starts TF Serving with these before the InferenceService's own args, and
# annotates the pods prometheus.kserve.io/port: '8080', prometheus.kserve.io/path: "/metrics".
KSERVE_RUNTIME_ARGS = [
    "--model_name={{.Name}}",
    "--port=9000",
    "--rest_api_port=8080",
    "--model_base_path=/mnt/models",
    "--rest_api_timeout_in_ms=60000",
]
KSERVE_RUNTIME_METRICS = {"port": "8080", "path": "/metrics"}


def official_image_arguments(tmp_path, model_dir) -> dict[str, tuple[list[str], dict[str, str]]]:
    """What each deployment gives the official tensorflow/serving image, verbatim, with only its
    paths (files this repository ships, the models) and its ports (free ones here) made local:
    {where: (arguments, {"--port": local port, "--rest_api_port": local port})}."""
    from conftest import free_port

    maps = kustomize_config_maps()
    config_dir = tmp_path / "config"
    for files in maps.values():
        for name, text in files.items():
            (config_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (config_dir / name).write_text(text)
    _, container = serving_container()
    isvc = by_kind("InferenceService", "facegan")
    e = env("serving")
    image_entrypoint = [  # the image's tf_serving_entrypoint.sh, with the Dockerfile's ENV
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_name={e['MODEL_NAME']}",
        f"--model_base_path={e['MODEL_BASE_PATH']}/{e['MODEL_NAME']}",
    ]
    import json as _json

    from test_deploy import instructions

    sources = {
        "Dockerfile and docker-compose.yml": image_entrypoint + _json.loads(instructions("serving", "CMD")[0]),
        "deploy/k8s/serving.yaml": list(container["args"]),
        "deploy/k8s/kserve/inferenceservice.yaml": [
            a.replace("{{.Name}}", isvc["metadata"]["name"]) for a in KSERVE_RUNTIME_ARGS
        ]
        + list(isvc["spec"]["predictor"]["model"]["args"]),
    }
    local_config = (config_dir / "models.config").read_text().replace(f"/models/{DEFAULT_MODEL_NAME}", str(model_dir))
    (config_dir / "models.config").write_text(local_config)
    paths = {
        "/etc/facegan/batching_parameters.txt": str(K8S / "config" / "batching_parameters.txt"),  # the COPY's source
        "/config/serving/": f"{config_dir}/",
        "/config/models/": f"{config_dir}/",
        f"/models/{DEFAULT_MODEL_NAME}": str(model_dir),
        "/mnt/models": str(model_dir),
    }
    found = {}
    for where, args in sources.items():
        ports = {}
        local = []
        for arg in args:
            flag, _, value = arg.partition("=")
            if flag in ("--port", "--rest_api_port"):
                ports[flag] = str(free_port())
                value = ports[flag]
            for remote, here in paths.items():
                value = value.replace(remote, here) if value.startswith(remote) else value
            local.append(f"{flag}={value}" if value else flag)
        found[where] = (local, ports)
    return found


@pytest.mark.slow
def test_facegan_serve_runs_the_official_images_arguments_verbatim(tmp_path, model_dir):
    """The arguments this repository gives TF Serving in production (the Dockerfile's image,
    the k8s Deployment, KServe's runtime plus the InferenceService) start facegan serve as they
    are, and a client gets faces over gRPC and REST; the metrics path KServe is told to scrape
    answers with TF Serving's series."""
    import json as _json
    import subprocess
    import sys
    import urllib.request

    from conftest import stop_process

    from facegan.client import FaceClient

    isvc = by_kind("InferenceService", "facegan")
    annotations = isvc["metadata"]["annotations"]
    for where, (args, ports) in official_image_arguments(tmp_path, model_dir).items():
        proc = subprocess.Popen(
            [sys.executable, "-m", "facegan.cli", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            line = proc.stdout.readline()
            assert "listening on" in line, (where, args, proc.stderr.read())
            grpc_port, rest_port = ports["--port"], ports["--rest_api_port"]
            with FaceClient(f"127.0.0.1:{grpc_port}") as client:
                faces, _ = client.from_seeds([1, 2])
            assert faces.shape == (2, 32, 32, 3), where
            url = f"http://127.0.0.1:{rest_port}/v1/models/{DEFAULT_MODEL_NAME}"
            assert _json.loads(urllib.request.urlopen(url, timeout=30).read())["model_version_status"][0]["state"] == (
                "AVAILABLE"
            )
            if where.endswith("inferenceservice.yaml"):  # what KServe's scrape asks for
                assert annotations.get("prometheus.kserve.io/port", KSERVE_RUNTIME_METRICS["port"]) == "8080"
                path = annotations.get("prometheus.kserve.io/path", KSERVE_RUNTIME_METRICS["path"])
                page = urllib.request.urlopen(f"http://127.0.0.1:{rest_port}{path}", timeout=30).read().decode()
                assert ":tensorflow:serving:request_count" in page, path
        finally:
            stop_process(proc)
