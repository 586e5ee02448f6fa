"""Training on more than one host: who this process is, and who writes the run folder.

TensorFlow (`--strategy multiworker`): the cluster comes from `TF_CONFIG`, which the Kubeflow
Training Operator's TFJob sets in every pod (or you set by hand: docs/deploy.md, "Training on a cluster"). Every
worker runs the same steps; only the chief writes the shared run folder (config, metrics,
previews, checkpoints, TensorBoard): the task of type "chief", or worker 0 when the cluster
has no chief (TensorFlow's own convention). The other workers write into a scratch folder of
their own that is removed at the end, so two processes never write one file.

JAX (`--strategy data-parallel` across hosts): `jax.distributed.initialize()` needs the
coordinator's address, the number of processes and this process's index. facegan calls it
itself when FACEGAN_COORDINATOR_ADDRESS is set (an indexed Job sets the index as
JOB_COMPLETION_INDEX); process 0 writes the run folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from facegan.errors import ConfigError

COORDINATOR = "FACEGAN_COORDINATOR_ADDRESS"  # host:port of process 0, e.g. facegan-train-0.facegan-train:1234
NUM_PROCESSES = "FACEGAN_NUM_PROCESSES"  # processes in the job (an indexed Job's completions)
PROCESS_ID = "FACEGAN_PROCESS_ID"  # this process's index; default: JOB_COMPLETION_INDEX
JOB_INDEX = "JOB_COMPLETION_INDEX"  # what Kubernetes sets in each pod of an indexed Job


@dataclass(frozen=True)
class Task:
    """This process's place in a multi-host job."""

    kind: str  # "chief", "worker", … (TF_CONFIG's task type) or "process" (JAX)
    index: int
    chief: bool  # writes the run folder
    workers: int  # processes taking part in training


def tf_task(environ=os.environ) -> Task:
    """This process's task from TF_CONFIG; a single-process task without one."""
    text = environ.get("TF_CONFIG", "")
    if not text:
        return Task("worker", 0, True, 1)
    try:
        config = json.loads(text)
        cluster = config["cluster"]
        kind = config["task"]["type"]
        index = int(config["task"]["index"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError('TF_CONFIG must be JSON like {"cluster": {...}, "task": {"type": ..., "index": N}}') from None
    if kind not in cluster or not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG's task {kind}:{index} is not in its cluster {sorted(cluster)}")
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return Task(kind, index, chief, workers)


def jax_task(environ=os.environ) -> Task | None:
    """This process's task from facegan's variables (None: a single-host run)."""
    address = environ.get(COORDINATOR, "")
    if not address:
        return None
    try:
        count = int(environ[NUM_PROCESSES])
        index = int(environ.get(PROCESS_ID) or environ[JOB_INDEX])
    except (KeyError, ValueError):
        raise ConfigError(
            f"{COORDINATOR} is set: {NUM_PROCESSES} and {PROCESS_ID} (or an indexed Job's {JOB_INDEX}) "
            "must be whole numbers"
        ) from None
    if not 0 <= index < count:
        raise ConfigError(f"process index {index} is not in 0..{count - 1}")
    return Task("process", index, index == 0, count)


def initialize_jax(environ=os.environ) -> Task | None:
    """jax.distributed.initialize() from facegan's variables, before JAX touches a device."""
    task = jax_task(environ)
    if task is not None:
        import jax

        jax.distributed.initialize(
            coordinator_address=environ[COORDINATOR], num_processes=task.workers, process_id=task.index
        )
    return task
