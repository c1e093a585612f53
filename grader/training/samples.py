"""A grid's worth of validation photos with the trusted model's predictions, for the report.

Stored inside result.json as small JPEG data URIs, so that `reports/` can re-render the grid from
result.json alone, and the report stays one self-contained file.
"""

from __future__ import annotations

import base64

import numpy as np
from PIL import Image

from grader.result import Sample
from grader.training.data import Split, encode_jpeg

SAMPLES = 24       # photos in the report's grid
THUMBNAIL = 96     # pixels per side
JPEG_QUALITY = 80


def thumbnail(pixels: np.ndarray) -> str:
    """A data: URI of a small JPEG of one image."""
    small = Image.fromarray(pixels, "RGB").resize((THUMBNAIL, THUMBNAIL),
                                                  Image.Resampling.BILINEAR)
    jpeg = encode_jpeg(np.asarray(small), JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def samples(split: Split, predictions: list[int], classes: tuple[str, ...],
            count: int = SAMPLES) -> list[Sample]:
    """The first ``count`` images of the split (the same ones for every student), predicted."""
    chosen = []
    for index in range(min(count, len(split.labels))):
        true, predicted = int(split.labels[index]), int(predictions[index])
        chosen.append(Sample(thumbnail(split.images[index]), classes[true], classes[predicted],
                             true == predicted))
    return chosen
