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
from facegan.serving.batching import parse_batching_parameters


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
    export = build_parser().parse_args(["export", "--run", "r"])
    model_dir = f"{export.base_path}/{export.name}"  # where `facegan export` writes by default
    e = env("serving")
    assert e["MODEL_NAME"] == export.name
    (src, dest), (batching_src, batching_dest) = copies("serving")
    assert src == model_dir and dest == f"{e['MODEL_BASE_PATH']}/{e['MODEL_NAME']}"
    assert not dockerignored(src) and not dockerignored(batching_src)
    parse_batching_parameters((ROOT / batching_src).read_text())
    (cmd,) = instructions("serving", "CMD")
    flags = json.loads(cmd)
    assert "--enable_batching=true" in flags and f"--batching_parameters_file={batching_dest}" in flags
    assert instructions("serving", "EXPOSE") == [f"{DEFAULT_PORT} 8501"]
    assert any("AVAILABLE" in h and "/v1/models/${MODEL_NAME}" in h for h in instructions("serving", "HEALTHCHECK"))


@pytest.mark.parametrize("stage", ["demo", "trainer"])
def test_python_images_copy_existing_files(stage):
    for *sources, dest in copies(stage):
        for src in sources:
            assert (ROOT / src).exists() and not dockerignored(src), src


def test_demo_image_is_light_and_in_step_with_pyproject():
    import tomllib

    demo = [line.split("#")[0].strip() for line in (ROOT / "deploy/requirements-demo.txt").read_text().splitlines()]
    demo = {re.split(r"[<>=]", r)[0].lower(): r for r in demo if r}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[<>=]", r)[0].lower(): r for r in project["dependencies"] + project["optional-dependencies"]["demo"]
    }
    assert "tensorflow" not in demo and "tensorflow-serving-api" not in demo
    for name, requirement in demo.items():
        assert declared.get(name) == requirement, f"{requirement} vs pyproject {declared.get(name)}"
    assert any("--no-deps" in r for r in instructions("demo", "RUN"))


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
