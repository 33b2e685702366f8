"""Figures of reconstructions: projections, slices, loss histories and comparisons.

Everything is drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through ``pyplot``, so no display is needed and no global backend is changed.  Images use
the voxels' true aspect (from the spacing), axes in millimetres, a scale bar, a perceptual
colour map, negatives clipped to 0 and each panel scaled by its own maximum.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..core.volume import Volume
from ..errors import InputError
from ..io.atomic import atomic_path
from .metrics import pick_slice, projection

CMAP = "inferno"  # perceptually uniform, dark background like a PA image
DPI = 150
# Views of a volume: name -> (axis projected away, horizontal axis, vertical axis).
# Depth (z) grows downwards in the front and side views, as in a PA image of tissue.
VIEWS = {"top": (2, 0, 1), "front": (1, 0, 2), "side": (0, 1, 2)}
AXIS_NAMES = "xyz"


# --------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG, atomically (no half-written image on failure)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _positive(data: np.ndarray) -> np.ndarray:
    """Negatives clipped to 0 and scaled to [0, 1] by the maximum (all-zero stays zero)."""
    clipped = np.clip(np.asarray(data, dtype=np.float64), 0.0, None)
    peak = float(clipped.max()) if clipped.size else 0.0
    return clipped / peak if peak > 0 else clipped


def _edges_mm(volume: Volume, axis: int) -> tuple[float, float]:
    """Outer edges (mm) of the voxels along ``axis``: centres +/- half a voxel."""
    first = volume.origin[axis] - volume.spacing[axis] / 2
    last = first + volume.shape[axis] * volume.spacing[axis]
    return first * 1e3, last * 1e3


def _nice_length(span: float) -> float:
    """A 1, 2 or 5 times a power of ten close to a fifth of ``span``."""
    target = max(span / 5.0, 1e-9)
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target:
            return step * power
    return power


def _scale_bar(ax, span_mm: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = _nice_length(span_mm)
    label = f"{length:g} mm"
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        label,
        loc="lower right",
        pad=0.3,
        sep=2,
        color="white",
        frameon=False,
        size_vertical=0,
        fontproperties={"size": 7},
    )
    ax.add_artist(bar)


def _show(ax, image: np.ndarray, h_edges, v_edges, *, depth_down: bool, labels, limits=None):
    """Draw a 2-D image indexed ``[horizontal, vertical]`` with true aspect and mm axes."""
    # imshow wants rows = vertical; extent order sets which way each axis grows.
    if depth_down:
        extent = (h_edges[0], h_edges[1], v_edges[1], v_edges[0])
        origin = "upper"
    else:
        extent = (h_edges[0], h_edges[1], v_edges[0], v_edges[1])
        origin = "lower"
    im = ax.imshow(
        _positive(image).T,
        cmap=CMAP,
        vmin=0.0,
        vmax=1.0,
        extent=extent,
        origin=origin,
        aspect="equal",
        interpolation="nearest",
    )
    if limits is not None:
        (h0, h1), (v0, v1) = limits
        ax.set_xlim(h0, h1)
        ax.set_ylim((v1, v0) if depth_down else (v0, v1))
    ax.set_xlabel(f"{labels[0]} (mm)", fontsize=8)
    ax.set_ylabel(f"{labels[1]} (mm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_facecolor("black")
    xlim = ax.get_xlim()
    _scale_bar(ax, abs(xlim[1] - xlim[0]))
    return im


def _view_image(volume: Volume, view: str) -> np.ndarray:
    """The maximum amplitude projection ``view`` indexed [horizontal, vertical]."""
    # Removing the projected axis keeps the other two in order, and h < v in every view.
    return projection(volume.data, VIEWS[view][0])


def _view_limits(volumes, view: str):
    """Horizontal and vertical limits (mm) covering every volume's grid for ``view``."""
    _, h, v = VIEWS[view]
    hs = [_edges_mm(vol, h) for vol in volumes]
    vs = [_edges_mm(vol, v) for vol in volumes]
    return (min(a for a, _ in hs), max(b for _, b in hs)), (
        min(a for a, _ in vs),
        max(b for _, b in vs),
    )


def _draw_view(ax, volume: Volume, view: str, limits=None):
    _, h, v = VIEWS[view]
    return _show(
        ax,
        _view_image(volume, view),
        _edges_mm(volume, h),
        _edges_mm(volume, v),
        depth_down=(v == 2),
        labels=(AXIS_NAMES[h], AXIS_NAMES[v]),
        limits=limits,
    )


def _check_volume(volume, name: str) -> Volume:
    if not isinstance(volume, Volume):
        raise InputError("figures", name, "a Volume", got=type(volume).__name__)
    if volume.data.ndim != 3 or volume.data.size == 0:
        raise InputError("figures", name, "a non-empty 3-D volume", got=f"shape {volume.shape}")
    if not np.isfinite(volume.data).all():
        raise InputError("figures", name, "finite voxel values", got="NaN or inf")
    return volume


def _metrics_line(m: dict) -> str:
    """A short summary of :func:`slingbag.report.metrics.metrics` output for a subtitle."""
    parts = []
    for key, label, fmt in (
        ("ssim_map_z", "SSIM top", "{:.3f}"),
        ("ssim_map_y", "front", "{:.3f}"),
        ("snr_db", "SNR", "{:.1f} dB"),
        ("cnr", "CNR", "{:.2f}"),
        # What a run cost, where the caller measured it (the demo does).
        ("seconds", "", "{:.1f} s"),
        ("peak_memory_mib", "peak", "{:.0f} MiB"),
    ):
        if key in m and m[key] is not None:
            parts.append((f"{label} " if label else "") + fmt.format(float(m[key])))
    return ", ".join(parts)


def _panel_sizes(volumes, views) -> tuple[list[float], list[float]]:
    """Width per view column and height per view, in mm, for the figure layout."""
    widths, heights = [], []
    for view in views:
        (h0, h1), (v0, v1) = _view_limits(volumes, view)
        widths.append(h1 - h0)
        heights.append(v1 - v0)
    return widths, heights


# --------------------------------------------------------------------------- figures


def maps_figure(volume: Volume, path, *, truth: Volume | None = None, title=None) -> Path:
    """The three maximum amplitude projections (top, front, side), beside the truth's.

    Parameters
    ----------
    volume : Volume
        The reconstruction.
    path : str or os.PathLike
        PNG to write.
    truth : Volume, optional
        Shown as a second row on the same axis limits.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    rows = [("reconstruction", _check_volume(volume, "volume"))]
    if truth is not None:
        rows.append(("truth", _check_volume(truth, "truth")))
    vols = [v for _, v in rows]
    views = list(VIEWS)
    widths, heights = _panel_sizes(vols, views)
    # Top and front share x; the side view's width is y.  Row height follows the tallest.
    row_h = max(heights[0], heights[1], heights[2])
    total_w = sum(widths)
    fig_w = 11.0
    # About 85 % of the width goes to the panels (the rest to the colour bar and labels).
    fig_h = min(12.0, max(2.2, 0.85 * fig_w * row_h / total_w + 0.9) * len(rows))
    fig = _new_figure(fig_w, fig_h)
    axes = fig.subplots(len(rows), 3, squeeze=False, gridspec_kw={"width_ratios": widths})
    for r, (name, vol) in enumerate(rows):
        for c, view in enumerate(views):
            im = _draw_view(axes[r, c], vol, view, limits=_view_limits(vols, view))
            axes[r, c].set_title(f"{name}: {view} MAP", fontsize=9)
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.8, label="normalised amplitude")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _slice_index(volume: Volume, axis: int, index) -> int:
    return pick_slice(volume.data, axis, index, "--slice-index", None)


def _nearest_index(volume: Volume, axis: int, coordinate: float) -> int:
    i = round((coordinate - volume.origin[axis]) / volume.spacing[axis])
    return int(np.clip(i, 0, volume.shape[axis] - 1))


def slice_figure(
    volume: Volume, path, *, truth: Volume | None = None, axis="z", index=None, title=None
) -> tuple[Path, int]:
    """One slice through the volume (and the truth at the same position).

    Parameters
    ----------
    volume : Volume
    path : str or os.PathLike
        PNG to write.
    truth : Volume, optional
        Shown beside, sliced at the nearest position to the reconstruction's slice.
    axis : {"x", "y", "z"}
        Axis normal to the slice.
    index : int, optional
        Slice index in ``volume``'s grid.  Default: the brightest slice (largest sum of the
        positive voxels) of the truth if given, else of the volume.
    title : str, optional

    Returns
    -------
    (pathlib.Path, int)
        The file written and the slice index used in ``volume``.
    """
    if axis not in AXIS_NAMES or not isinstance(axis, str) or len(axis) != 1:
        raise InputError("--slice-axis", None, "one of x, y, z", got=axis)
    d = AXIS_NAMES.index(axis)
    volume = _check_volume(volume, "volume")
    if truth is not None:
        truth = _check_volume(truth, "truth")
    if index is None and truth is not None:
        t_index = _slice_index(truth, d, None)
        index = _nearest_index(volume, d, truth.origin[d] + t_index * truth.spacing[d])
    else:
        index = _slice_index(volume, d, index)
    position = volume.origin[d] + index * volume.spacing[d]
    panels = [("reconstruction", volume, index)]
    if truth is not None:
        panels.append(("truth", truth, _nearest_index(truth, d, position)))
    h, v = [a for a in range(3) if a != d]
    vols = [p[1] for p in panels]
    h_lim = (min(_edges_mm(x, h)[0] for x in vols), max(_edges_mm(x, h)[1] for x in vols))
    v_lim = (min(_edges_mm(x, v)[0] for x in vols), max(_edges_mm(x, v)[1] for x in vols))
    aspect = (v_lim[1] - v_lim[0]) / (h_lim[1] - h_lim[0])
    fig_w = 5.0 * len(panels)
    fig = _new_figure(fig_w, min(10.0, max(2.5, 4.2 * aspect + 1.0)))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, vol, i) in zip(axes, panels, strict=True):
        image = np.take(vol.data, i, axis=d)
        im = _show(
            ax,
            image,
            _edges_mm(vol, h),
            _edges_mm(vol, v),
            depth_down=(v == 2),
            labels=(AXIS_NAMES[h], AXIS_NAMES[v]),
            limits=(h_lim, v_lim),
        )
        at = (vol.origin[d] + i * vol.spacing[d]) * 1e3
        ax.set_title(f"{name}: {axis} = {at:.2f} mm (index {i})", fontsize=9)
    fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="normalised amplitude")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path), index


def history_figure(history: dict, path, *, title=None) -> Path:
    """Loss per iteration (log scale) with the ball count on a twin axis.

    Parameters
    ----------
    history : dict of str -> 1-D array
        ``loss`` (required), ``balls`` and ``stage`` (0 coarse, 1 fine) if present; the
        first fine iteration is marked with a dashed line.
    path : str or os.PathLike
        PNG to write.
    title : str, optional
        Figure title (default "reconstruction history").

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    loss = np.asarray(history.get("loss", []), dtype=np.float64).reshape(-1)
    if loss.size == 0:
        raise InputError("figures", "history/loss", "a non-empty loss history")
    it = np.arange(1, loss.size + 1)
    fig = _new_figure(7.0, 3.8)
    ax = fig.subplots()
    positive = np.where(loss > 0, loss, np.nan)  # a log axis cannot show <= 0
    ax.semilogy(it, positive, color="tab:blue", lw=1.2, label="loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (relative misfit)", color="tab:blue")
    ax.tick_params(axis="y", colors="tab:blue")
    ax.grid(True, which="both", alpha=0.3)
    balls = np.asarray(history.get("balls", []), dtype=np.float64).reshape(-1)
    if balls.size == loss.size:
        twin = ax.twinx()
        twin.plot(it, balls, color="tab:orange", lw=1.0, label="balls")
        twin.set_ylabel("balls", color="tab:orange")
        twin.tick_params(axis="y", colors="tab:orange")
    stage = np.asarray(history.get("stage", []), dtype=np.float64).reshape(-1)
    if stage.size == loss.size and (stage > 0).any() and (stage == 0).any():
        first_fine = int(np.argmax(stage > 0)) + 1
        ax.axvline(first_fine - 0.5, color="grey", ls="--", lw=1.0)
        ax.text(
            first_fine,
            0.97,
            " fine stage",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
    ax.set_title(title or "reconstruction history", fontsize=10)
    return save_figure(fig, path)


def comparison_figure(
    volumes: dict, path, title: str | None = None, *, metrics: dict | None = None
) -> Path:
    """The methods side by side: one row per volume, columns the top and front MAPs.

    Parameters
    ----------
    volumes : dict of str -> Volume
        Row label -> volume, in display order (e.g. truth, UBP, slingbag).  Each panel is
        scaled by its own maximum; all rows share the axis limits.
    path : str or os.PathLike
        PNG to write.
    title : str, optional
        Figure title.
    metrics : dict of str -> dict, optional
        Row label -> the output of :func:`slingbag.metrics`, shown in the row's subtitle.

    Returns
    -------
    pathlib.Path
        The PNG written.
    """
    if not volumes:
        raise InputError("comparison_figure", "volumes", "at least one volume")
    rows = [(str(name), _check_volume(vol, str(name))) for name, vol in volumes.items()]
    vols = [v for _, v in rows]
    views = ["top", "front"]
    widths, heights = _panel_sizes(vols, views)
    fig_w = 9.0
    # Both columns span x, so each column gets half the width; rows as tall as needed.
    row_h = max(1.8, 0.42 * fig_w * max(heights[0], heights[1]) / max(widths[0], 1e-9) + 0.8)
    fig = _new_figure(fig_w, min(16.0, row_h * len(rows) + (0.4 if title else 0.0)))
    sub = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for sf, (name, vol) in zip(sub, rows, strict=True):
        axes = sf.subplots(1, 2, squeeze=False)[0]
        for ax, view in zip(axes, views, strict=True):
            im = _draw_view(ax, vol, view, limits=_view_limits(vols, view))
            ax.set_title(f"{view} MAP", fontsize=8)
        sf.colorbar(im, ax=axes.tolist(), shrink=0.85)
        label = name
        if metrics and name in metrics and metrics[name]:
            line = _metrics_line(metrics[name])
            if line:
                label += f"  ({line})"
        sf.suptitle(label, fontsize=9, fontweight="bold")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def write_figures(
    result, out_dir, *, truth: Volume | None = None, slice_axis="z", slice_index=None
) -> list[Path]:
    """All the figures of one result file's contents.

    Parameters
    ----------
    result : slingbag.io.native.Result
        From :func:`slingbag.io.native.read_result`.
    out_dir : str or os.PathLike
        Existing folder; ``maps.png``, ``slice_<axis>.png`` and, for reconstructions with
        a loss history, ``history.png`` are written there.
    truth : Volume, optional
        Ground truth shown beside the result (and metrics in the MAPs' title).
    slice_axis, slice_index
        See :func:`slice_figure`.

    Returns
    -------
    list of pathlib.Path
    """
    out = Path(out_dir)
    method = str(result.attrs.get("method", "result"))
    written = []
    if result.volume is None:
        raise InputError(
            result.source,
            "volume",
            "a result with a volume to draw",
            hint="voxelize the cloud first (slingbag reconstruct writes one)",
        )
    title = f"{method}: {Path(result.source).name}" if result.source else method
    if truth is not None:
        from .metrics import metrics as compute_metrics

        line = _metrics_line(compute_metrics(result.volume, truth))
        title = f"{title}\n{line}" if line else title
    written.append(maps_figure(result.volume, out / "maps.png", truth=truth, title=title))
    path, _ = slice_figure(
        result.volume,
        out / f"slice_{slice_axis}.png",
        truth=truth,
        axis=slice_axis,
        index=slice_index,
        title=method,
    )
    written.append(path)
    if np.asarray(result.history.get("loss", [])).size:
        written.append(history_figure(result.history, out / "history.png", title=method))
    return written
