"""EXAMPLE, not part of the package: the same full-refresh job on Kubernetes, one pod per step, GPUs for training.

Nothing in ``curatornet_pipeline`` imports this file, and the project does not depend on dagster-k8s; it is
a starting point for a cluster deployment (deploy/README.md explains the whole path). To use it:

1. ``pip install dagster-k8s==0.29.27`` in the image that runs the code (same release line as dagster 1.13.27).
2. Instance (``$DAGSTER_HOME/dagster.yaml`` on webserver, daemon and run pods): ``deploy/dagster.yaml`` with the
   ``run_launcher`` block swapped for ``K8sRunLauncher`` (the Dagster Helm chart writes that block for you).
   ``k8s_job_executor`` refuses to start under any other run launcher.
3. Serve this file as the code location (``dagster code-server start -f deploy/k8s_executor_example.py``, or
   the Helm chart's ``dagster-user-deployments`` pointing at it) instead of ``curatornet_pipeline.definitions``.

What changes and what does not:

- Same assets, checks, job, schedule and sensor (everything comes from ``build_definitions``); only the
  executor differs. Every step runs in its own Kubernetes Job; the run worker only orchestrates.
- Steps that train or embed images ask for one GPU (``nvidia.com/gpu: 1``) through ``per_step_k8s_config``,
  which is keyed by step name. The equivalent per-asset form is the op tag ``dagster-k8s/config``:
  ``@dg.asset(..., op_tags={"dagster-k8s/config": GPU_STEP_K8S_CONFIG})``; the executor merges both.
  The assets pick the GPU up by themselves (``device: auto``).
- Storage: the DuckDB file must now be reachable from every step pod. Either mount a ReadWriteMany volume
  (below, ``curatornet-data``) — the ``duckdb`` pool, whose slots live in the PostgreSQL instance database,
  still admits one writing step at a time across all pods — or, better on network file systems whose file
  locks DuckDB cannot trust, point ``CURATORNET_DUCKDB_PATH`` at MotherDuck (``md:curatornet`` plus a
  ``MOTHERDUCK_TOKEN`` secret) or move the tables to PostgreSQL.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_k8s import k8s_job_executor

from curatornet_pipeline.definitions import build_definitions

NAMESPACE = os.environ.get("CURATORNET_K8S_NAMESPACE", "dagster")
DATA_CLAIM = os.environ.get("CURATORNET_K8S_DATA_CLAIM", "curatornet-data")

# Steps worth a GPU: ResNet50 over the images, and the three trained models.
GPU_STEPS = ("resnet50_embeddings", "curatornet_model", "curatornet_random_sampling_model", "vbpr_model")

# Extended resources such as GPUs must have equal requests and limits; the toleration lets the pod onto the
# tainted GPU node pool that managed clusters (GKE, EKS, AKS) create.
GPU_STEP_K8S_CONFIG = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
            "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"},
        }
    },
    "pod_spec_config": {
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}

# Every other step (ingest, split, clustering, sampling, evaluation) fits a modest CPU pod.
CPU_STEP_K8S_CONFIG = {
    "container_config": {"resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi"}}},
}

k8s_gpu_executor = k8s_job_executor.configured(
    {
        "job_namespace": NAMESPACE,
        # Steps of one run in parallel; the duckdb pool still serializes the ones that write the file.
        "max_concurrent": 4,
        "env_vars": ["CURATORNET_DATA_DIR=/data", "CURATORNET_SOURCE"],
        "volumes": [{"name": "data", "persistent_volume_claim": {"claim_name": DATA_CLAIM}}],
        "volume_mounts": [{"name": "data", "mount_path": "/data"}],
        "step_k8s_config": CPU_STEP_K8S_CONFIG,
        "per_step_k8s_config": {step: GPU_STEP_K8S_CONFIG for step in GPU_STEPS},
    },
    name="k8s_gpu_executor",
)

defs = dg.Definitions.merge(build_definitions(), dg.Definitions(executor=k8s_gpu_executor))
