"""Run configuration that more than one step reads.

The ingest step's preflight checks the source against what the embedding and clustering steps of the same
run will do, so their config classes live here, beside neither asset module.
"""

from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from curatornet_pipeline.core.clustering import DEFAULT_SILHOUETTE_SAMPLE_SIZE
from curatornet_pipeline.core.device import DeviceSetting
from curatornet_pipeline.core.precision import PrecisionSetting
from curatornet_pipeline.core.preflight import EmbeddingSourceSetting


class EmbeddingConfig(dg.Config):
    source: EmbeddingSourceSetting = Field(
        default="auto",
        description="'auto' (the folder's resnet_embeddings.npy when present, else the images), 'npy' or 'images'.",
    )
    # A fixed choice or a file path, so a str: checked before the run writes anything (check_weights_setting).
    weights: str = Field(
        default="auto",
        description="'imagenet', 'random' (seeded init), or a path to a local ResNet50 state_dict file. "
        "'auto' = 'random' for the demo gallery, 'imagenet' otherwise.",
    )
    image_size: int = Field(
        default=0, description="Input size after center crop; 0 = 64 for the demo (its native size), 224 otherwise."
    )
    batch_size: int = Field(default=64, description="Images per forward pass.")
    device: DeviceSetting = Field(default="auto", description="'auto', 'cpu' or 'cuda'.")
    seed: int = Field(default=0, description="Seed of the random-init weights.")
    precision: PrecisionSetting = Field(
        default="auto",
        description="Forward-pass precision: 'auto' (bf16 autocast on a GPU or a CPU with native bf16, else fp32; "
        "CURATORNET_PRECISION overrides), 'fp32' or 'bf16'.",
    )


class ClusteringConfig(dg.Config):
    n_clusters: Optional[int] = Field(
        default=None,
        description="k of k-means. Unset: the paper's 100, lowered to about one cluster per 15 artworks for "
        "catalogues under 1,500 artworks (the choice is logged and in metadata).",
    )
    n_runs: int = Field(default=20, description="k-means runs with different seeds; the best silhouette wins.")
    pca_components: int = Field(default=200, description="PCA dimensions before k-means (the paper: 200).")
    seed: int = Field(default=0, description="Seed of PCA and of the first k-means run.")
    clusters: Literal["auto", "compute", "file"] = Field(
        default="auto",
        description="'compute' (k-means as above), 'file' (the source folder's clusters.json, artwork id -> "
        "cluster, as the authors published it; k-means is skipped) or 'auto' (the file when the folder has one).",
    )
    silhouette_sample_size: int = Field(
        default=DEFAULT_SILHOUETTE_SAMPLE_SIZE,
        description="Silhouettes are computed on this many artworks (a fixed seeded sample) once the catalogue is "
        "larger; 0 = every artwork (exact, O(N^2) per run).",
    )
