"""Source folders written by hand, sensor ticks, and reading why a run failed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from PIL import Image

from curatornet_pipeline import automation
from curatornet_pipeline.resources import GallerySource


def write_image(path: Path, shade: int = 0) -> None:
    Image.new("RGB", (4, 4), (shade, shade, shade)).save(path)


def write_ugallery_folder(folder: Path) -> Path:
    """A small UGallery-format source folder: inventory, purchases, two images."""
    (folder / "images").mkdir(parents=True)
    (folder / "inventory.csv").write_text(
        "artwork_id_hash,artist_id_hash,upload_timestamp\na1,x,1000\nb2,x,1100\nc3,y,1200\n"
    )
    (folder / "purchases.csv").write_text(
        "user_id_hash,purchase_timestamp,purchased_artwork_ids_hash\n"
        "u1,2000,\"['a1']\"\nu1,3000,\"['b2', 'c3']\"\n"
    )
    for name in ("a1", "b2"):
        write_image(folder / "images" / f"{name}.png")
    return folder


def tick(gallery: GallerySource, instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"gallery": gallery})
    return automation.source_files_sensor(context)


def run_requests(result) -> list[dg.RunRequest]:
    return list(result.run_requests or []) if isinstance(result, dg.SensorResult) else []


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run was expected to fail"
    error, messages = failures[0].event_specific_data.error, []
    while error is not None:  # Dagster wraps the user's exception: read the whole cause chain
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)
