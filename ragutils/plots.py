"""Small plotting helpers that several notebooks share: an annotated heat map, a scatter coloured by label."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike


def heatmap(matrix: ArrayLike, row_labels: Sequence[str], col_labels: Sequence[str] | None = None,
            ax: Axes | None = None, title: str = "", fmt: str = ".2f", cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None) -> Axes:
    """Draw a matrix as coloured cells with each value written in its cell. Used in notebook 01, section 4.3."""
    matrix = np.asarray(matrix, dtype=float)
    col_labels = row_labels if col_labels is None else col_labels
    ax = ax if ax is not None else plt.subplots(figsize=(1 + 0.7 * len(col_labels), 0.6 * len(row_labels)))[1]
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    # Dark text on light cells, light text on dark cells, so every number stays readable.
    low, high = image.get_clim()
    middle = (low + high) / 2
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=8,
                color="black" if value > middle else "white")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def scatter_by_label(points: ArrayLike, labels: Sequence[str], ax: Axes | None = None, title: str = "",
                     size: float = 12) -> Axes:
    """Scatter 2-D points, one colour per label, with a legend. Used in notebook 01, section 4.2."""
    points = np.asarray(points, dtype=float)
    ax = ax if ax is not None else plt.subplots(figsize=(7, 6))[1]
    labels = np.asarray(labels)
    # Labels in order of first appearance, so colours do not depend on set ordering.
    for label in dict.fromkeys(labels.tolist()):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=size, alpha=0.7, label=label)
    ax.legend(markerscale=2, fontsize=9)
    ax.set_title(title)
    return ax
