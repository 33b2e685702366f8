"""Hooks of the gallery, named by string in conf.py so that Sphinx can cache its
configuration (functions in ``sphinx_gallery_conf`` cannot be pickled)."""

from __future__ import annotations


def reset_slingbag(gallery_conf, fname):
    """Before each example: the CPU backend (started by the first example, kept after)."""
    import slingbag

    slingbag.init("cpu")


def pyvista_scraper(block, block_vars, gallery_conf):
    """PyVista's scraper: the plotters an example left open become its figures.

    With ``pyvista.BUILDING_GALLERY`` a plotter's ``show()`` keeps its last image for the
    scraper, and a closed plotter stays in PyVista's list.  Plotters closed without such an
    image are dropped first, since the scraper would fail on them: :func:`slingbag.view`
    closes its own once it has written its screenshot (shown by the example itself).
    """
    import pyvista
    from pyvista.plotting import plotter

    for key, p in list(plotter._ALL_PLOTTERS.items()):
        if getattr(p, "_closed", False) and getattr(p, "last_image", None) is None:
            del plotter._ALL_PLOTTERS[key]
    return pyvista.Scraper()(block, block_vars, gallery_conf)
