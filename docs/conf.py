"""Sphinx configuration of slingbag's documentation.

Build (from the repository root)::

    .venv/bin/pip install -e ".[docs]"
    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The gallery (docs/examples/) runs on every build, on the CPU backend, so an example that
stops working fails the build.  ``-D plot_gallery=0`` skips running it (a quick look at
the pages; the example pages then have no figures).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger("slingbag.docs")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout, even without `pip install -e`
sys.path.insert(0, str(HERE))  # _sg_hooks

# The gallery runs on the CPU, whatever GPU the build machine has: the same pictures on
# every machine, and no GPU needed to build the docs.
os.environ.setdefault("SLINGBAG_ARCH", "cpu")
# PyVista renders off-screen (no display on CI); without an X server ask VTK for EGL at
# once instead of letting it try X first and print a warning (as slingbag.view does).
if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
os.environ.setdefault("MPLBACKEND", "agg")

import pyvista  # noqa: E402

import slingbag  # noqa: E402

pyvista.OFF_SCREEN = True
pyvista.BUILDING_GALLERY = True  # keep plotters open for sphinx-gallery's scraper
pyvista.set_plot_theme("document")

# -- Project -------------------------------------------------------------------------------

project = "slingbag"
author = "slingbag contributors"
copyright = "slingbag contributors, MIT licence"
version = release = slingbag.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "examples",  # the gallery's sources; sphinx-gallery makes auto_examples/ of them
    "Thumbs.db",
    ".DS_Store",
]

# -- MyST (the Markdown pages) ---------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "amsmath", "attrs_inline"]
myst_heading_anchors = 3  # `[text](formats.md#result-hdf5)` links to headings

# -- API reference ---------------------------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections say the types, in words
autodoc_default_options = {"member-order": "bysource"}
add_module_names = False

# numpydoc: a class page documents its methods and properties with autodoc (`:members:` in
# _templates/autosummary/class.rst); numpydoc's own member tables would list them a second
# time, and every dataclass field a third.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# numpydoc validation.  The build enforces the checks of a docstring's structure, whose
# failures render wrongly or mislead: no summary, a section numpydoc does not know (its
# text is dropped), sections out of order, a documented parameter the function does not
# have or in the wrong order, "name: type" without the space (read as one name), a Returns
# line that is not a type.  And of its completeness: a docstring on every method and
# property (GL08), every parameter documented (PR01) and described (PR07, PR08), a Returns
# section (RT01) with a description (RT03, RT04), a one-line summary (SS06) in the
# imperative or a noun phrase, not "Returns ..." (SS05), closing quotes on a line of their
# own (GL02).  Style is not enforced (an extended summary, See Also, Examples):
# `SLINGBAG_DOCS_VALIDATE=all sphinx-build ...` reports every check, for a list of what to
# mend.
if os.environ.get("SLINGBAG_DOCS_VALIDATE") == "all":
    numpydoc_validation_checks = {"all"}
else:
    numpydoc_validation_checks = {
        "GL06", "GL07", "SS01", "PR02", "PR03", "PR10", "RT02", "YD01",
        "GL08", "PR01", "PR07", "PR08", "RT01", "RT03", "RT04", "SS05", "SS06", "GL02",
    }  # fmt: skip


def _check_api_page(app):
    """Every name of ``slingbag.__all__`` must be on the API page: a warning (an error
    under ``-W``) names any that is not, so a new export cannot go undocumented."""
    text = (HERE / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^ {3}~?([\w.]+)\s*$", text, flags=re.M))
    missing = [n for n in slingbag.__all__ if n != "__version__" and n not in listed]
    if missing:
        logger.warning("docs/api.rst does not list %s (in slingbag.__all__)", ", ".join(missing))


def _skip_data_attributes(app, what, name, obj, skip, options):
    """On class pages, methods and properties are listed (with or without a docstring:
    a newcomer looks for ``Acquisition.n_sensors`` too), data attributes are not: the
    class docstring's Attributes section describes them, and dataclass fields would
    otherwise appear twice."""
    if what == "class" and not (callable(obj) or isinstance(obj, (property, staticmethod))):
        return True
    return None


def setup(app):
    app.connect("builder-inited", _check_api_page)
    app.connect("autodoc-skip-member", _skip_data_attributes)


# -- Gallery ---------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every example runs
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib", "_sg_hooks.pyvista_scraper"),
    "reset_modules": ("matplotlib", "_sg_hooks.reset_slingbag"),
    "doc_module": ("slingbag",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
}

# -- HTML ------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"slingbag {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    # Every top-level page in the navbar (8 of them), none hidden under "More".
    "header_links_before_dropdown": 9,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sg_download_links", "sg_launcher_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
