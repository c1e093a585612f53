"""`grade data`: make flower shards in the codelab's TFRecord format (synthetic, from a photo
folder, or downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader.cli_options import DIR, exercise_option
from grader.exercise import load_exercise

TFDS_DATASET = "tf_flowers"


@click.group()
def data() -> None:
    """Make flower shards in the codelab's TFRecord format."""


@data.command("synth")
@click.option("--out", required=True, type=DIR, help="Folder for the shards.")
@click.option("--images", default=1280, show_default=True, type=click.IntRange(min=1))
@click.option("--size", default=192, show_default=True, type=int, help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--shards", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--clutter", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Nuisances around the flowers (grass, blobs, occlusion, blur, noise): "
                   "1 all, 0 none.")
@exercise_option
def data_synth(out: Path, images: int, size: int, seed: int, shards: int, clutter: float,
               exercise: str) -> None:
    """Write procedural synthetic flowers as shards."""
    from grader.training.data import synthesize

    loaded = load_exercise(exercise)
    written = synthesize(out, loaded.classes, images, size, seed, shards, clutter)
    click.echo(f"wrote {written.images} images in {len(written.files)} shards to {out}")


@data.command("import")
@click.argument("photos_dir", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=DIR, help="Folder for the shards.")
@click.option("--size", default=192, show_default=True, type=int, help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True, type=int, help="Shuffles the photos.")
@click.option("--shards", default=16, show_default=True, type=click.IntRange(min=1))
@exercise_option
def data_import(photos_dir: Path, out: Path, size: int, seed: int, shards: int,
                exercise: str) -> None:
    """Turn a flower_photos-style PHOTOS_DIR (one folder per class) into shards."""
    from grader.training.data import import_photos

    loaded = load_exercise(exercise)
    written = import_photos(photos_dir, out, loaded.classes, size, seed, shards)
    counts = ", ".join(f"{c} {n}" for c, n in zip(loaded.classes, written.per_class))
    click.echo(f"wrote {written.images} images ({counts}) in {len(written.files)} shards "
               f"to {out}")


@data.command("fetch")
@click.option("--out", required=True, type=DIR, help="Folder for the shards.")
@click.option("--size", default=192, show_default=True, type=int, help="Image side in pixels.")
@click.option("--url", help="Download from this address instead of the exercise's.")
@click.option("--sha256", help="Expected SHA-256 of the archive (with --url).")
@exercise_option
def data_fetch(out: Path, size: int, url: str | None, sha256: str | None, exercise: str) -> None:
    """Download the public flower photo archive, verify it, and turn it into shards."""
    from grader.training.fetch import fetch

    loaded = load_exercise(exercise)
    if url and not sha256:
        raise click.BadParameter("give the archive's checksum too.", param_hint="--sha256")
    with click.progressbar(length=loaded.dataset.size, label="downloading",
                           file=sys.stderr) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.length = total or bar.length
            bar.update(done - bar.pos)

        written = fetch(loaded.dataset, out, loaded.classes, size, progress, url, sha256)
    counts = ", ".join(f"{c} {n}" for c, n in zip(loaded.classes, written.per_class))
    click.echo(f"wrote {written.images} images ({counts}) in {len(written.files)} shards "
               f"to {out}")
    click.echo(f"notebooks that call tfds.load('{TFDS_DATASET}'): run `grade data tfds --data "
               f"{out}` to serve it offline")


@data.command("tfds")
@click.option("--data", "data_dir", required=True, type=DIR,
              help="The --data folder the notebooks are graded with.")
@click.option("--archive", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A flower_photos .tgz (default: the one `grade data fetch` kept in "
                   "DATA/.fetch).")
@exercise_option
def data_tfds(data_dir: Path, archive: Path | None, exercise: str) -> None:
    """Prepare TFDS's tf_flowers from the photo archive, so that tfds.load works offline."""
    from urllib.parse import urlparse

    from grader.training.offline import prepare_tfds

    loaded = load_exercise(exercise)
    archive = archive or data_dir / ".fetch" / Path(urlparse(loaded.dataset.url).path).name
    click.echo(f"prepared {TFDS_DATASET} in {prepare_tfds(archive, data_dir)}; the grading "
               f"kernel's tfds.load reads it")
