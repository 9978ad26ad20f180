"""Pictures of samples: image grids for images, scatter or histogram plots for toy data.

Plots are drawn on ``matplotlib.figure.Figure`` objects, which need no pyplot and no backend:
importing or calling this module never changes a notebook's matplotlib backend.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image


def to_uint8(x_BHWC: np.ndarray) -> np.ndarray:
    """Maps [-1, 1] to {0..255}; values beyond +-1 (over-saturation) are clipped for display."""
    return np.round((np.clip(np.asarray(x_BHWC, np.float32), -1, 1) + 1) * 127.5).astype(np.uint8)


def image_grid(x_BHWC: np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles a batch into one uint8 picture (H', W', C), ``ncol`` images per row."""
    imgs = to_uint8(x_BHWC)
    b, h, w, c = imgs.shape
    ncol = ncol or int(math.ceil(math.sqrt(b)))
    nrow = int(math.ceil(b / ncol))
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    for i in range(b):
        r, q = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = imgs[i]
    return grid


def figure(nrows: int = 1, ncols: int = 1, figsize=(4.5, 4.5), dpi: int = 100):
    """``(fig, axes)``, a Figure of its own (axes always a 2-D array) that ``fig.savefig``
    writes without any matplotlib backend being selected."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))


def save_image_grid(x_BHWC: np.ndarray, path: str, ncol: int | None = None, scale: int = 0):
    """Writes an image grid as PNG; small images are enlarged (nearest) to be seen."""
    grid = image_grid(x_BHWC, ncol)
    if not scale:
        scale = max(1, 256 // max(x_BHWC.shape[1], 1) // 4)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def save_labelled_grid(x_BHWC: np.ndarray, path: str, ncol: int, col_labels, xlabel: str,
                       ylabel: str = "", title: str = "", cell_pixels: int = 40):
    """Writes an image grid, ``ncol`` images per row, with a label under each column (a K2, a
    rho, an iteration t) and the axes named, so that the picture explains itself. Returns the
    axes drawn."""
    grid = image_grid(x_BHWC, ncol)
    h, w = x_BHWC.shape[1:3]
    pad = (grid.shape[1] - ncol * w) / (ncol + 1)
    scale = max(1.0, cell_pixels / max(w, 1))
    dpi = 100
    fig, axes = figure(figsize=(grid.shape[1] * scale / dpi + 1.0,
                                grid.shape[0] * scale / dpi + 0.9 + 0.25 * bool(title)), dpi=dpi)
    ax = axes[0, 0]
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_xticks([pad + i * (w + pad) + (w - 1) / 2 for i in range(ncol)])
    ax.set_xticklabels([str(label) for label in col_labels], fontsize=8)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.05)  # a label wider than the grid
    return ax


def save_toy_plot(x_ND: np.ndarray, path: str, log_density: Callable | None = None,
                  lim: float | None = None, title: str = ""):
    """Scatter (2-D) or histogram (1-D) of samples, over the true density when it is known,
    with a legend and named axes. Returns the axes drawn."""
    x_ND = np.asarray(x_ND, np.float64)
    finite = np.isfinite(x_ND).all(axis=1)
    x_ND = x_ND[finite]
    if lim is None:
        lim = float(np.percentile(np.abs(x_ND), 99.5)) * 1.15 if len(x_ND) else 1.0
    fig, axes = figure()
    ax = axes[0, 0]
    if x_ND.shape[1] == 1:
        grid = np.linspace(-lim, lim, 400)
        ax.hist(x_ND[:, 0], bins=80, range=(-lim, lim), density=True, alpha=0.6,
                label="short-run samples")
        if log_density is not None:
            ax.plot(grid, np.exp(np.asarray(log_density(grid[:, None].astype(np.float32)))),
                    "k-", lw=1.2, label="true density")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("x", fontsize=9)
        ax.set_ylabel("density", fontsize=9)
    else:
        if log_density is not None:
            g = np.linspace(-lim, lim, 200)
            xx, yy = np.meshgrid(g, g)
            pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
            dens = np.exp(np.asarray(log_density(pts))).reshape(xx.shape)
            ax.imshow(dens, extent=(-lim, lim, -lim, lim), origin="lower", cmap="Greys",
                      alpha=0.8)
        ax.scatter(x_ND[:, 0], x_ND[:, 1], s=2, c="tab:red", alpha=0.5, linewidths=0,
                   label="short-run samples")
        if log_density is not None:
            from matplotlib.patches import Patch
            handles = ax.get_legend_handles_labels()[0]
            handles.append(Patch(color="0.45", label="true density (darker: higher)"))
            ax.legend(handles=handles, loc="upper right", fontsize=7, markerscale=4)
        else:
            ax.legend(loc="upper right", fontsize=7, markerscale=4)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel("x1", fontsize=9)
        ax.set_ylabel("x2", fontsize=9)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return ax


def save_samples(x: np.ndarray, path: str, is_image: bool, log_density: Callable | None = None,
                 title: str = ""):
    """Writes the picture that suits the data: a grid of images or a toy plot."""
    if is_image:
        save_image_grid(x, path)
    else:
        save_toy_plot(x, path, log_density, title=title)
