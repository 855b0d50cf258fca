"""Write embeddings in UGallery's resnet_embeddings.npy layout, as the authors' published file has them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curatornet_pipeline.core.embeddings import validate_embedding_matrix


def save_embeddings_npy(path: Path, artwork_ids: Sequence[str], emb: np.ndarray, form: str = "save") -> None:
    """Write ``emb`` (rows aligned with ``artwork_ids``) in UGallery's (N, 2) object-array format.

    ``form``: "save" (``numpy.save``, a .npy header) or "dump" (``ndarray.dump()``, a bare pickle).
    """
    validate_embedding_matrix(emb, str(path))
    if len(artwork_ids) != emb.shape[0]:
        raise ValueError(f"{len(artwork_ids)} ids for {emb.shape[0]} embedding rows")
    array = np.empty((len(artwork_ids), 2), dtype=object)
    for i, artwork_id in enumerate(artwork_ids):
        array[i, 0] = str(artwork_id)
        array[i, 1] = np.asarray(emb[i], dtype=np.float32)
    if form == "dump":
        array.dump(str(path))
    else:
        np.save(Path(path), array, allow_pickle=True)
