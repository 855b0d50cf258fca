"""Content fingerprints of a source folder: what the ingest step records and the source-files sensor compares."""

import hashlib
from pathlib import Path

SOURCE_FILE_NAMES = (
    "inventory.csv",
    "purchases.csv",
    "resnet_embeddings.npy",
    "items.csv",
    "interactions.csv",
    "likes.csv",  # the visitor app's likes (core.feedback.read_likes)
    "events.csv",  # the shop's events through the JSON API (core.events.read_events)
    "unlikes.csv",  # likes the visitors took back (core.feedback.read_likes)
    "artwork_details.csv",  # titles, prices... beside UGallery files (core.catalogue.read_item_details)
    "clusters.json",  # the authors' clusters (core.clustering.read_clusters_json)
    "test_baskets.csv",  # the authors' test set (core.split.read_test_tuples)
)


def source_fingerprint(folder: Path) -> dict[str, str]:
    """A content fingerprint per source file, and one for the images folder (names, sizes, times)."""
    prints: dict[str, str] = {}
    for name in SOURCE_FILE_NAMES:
        path = folder / name
        if path.exists():
            digest = hashlib.sha1()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            prints[name] = digest.hexdigest()
    images = folder / "images"
    if images.is_dir():
        digest = hashlib.sha1()
        for entry in sorted(images.iterdir()):
            stat = entry.stat()
            digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        prints["images/"] = digest.hexdigest()
    return prints
