"""Sphinx extension: serve MathJax and the ipywidgets embed scripts from local copies.

Jupyter Book loads MathJax, RequireJS and ``@jupyter-widgets/html-manager`` from CDNs by
default, so equations and widget snapshots vanish offline. ``scripts/fetch_book_assets.sh``
fetches the npm packages into ``.vendor/``; when those copies are present this extension copies
them into ``_static/`` and points the pages at them. Where a copy is absent the CDN default
stays (and the build says so). It also lets the widget manager typeset with MathJax 3
(:data:`MATHJAX2_HUB_SHIM`).
"""

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Folder (relative to the book's root) that ``scripts/fetch_book_assets.sh`` fills.
VENDOR_DIR = ".vendor"
#: Paths inside ``_static/`` once the vendor folder is copied there.
MATHJAX_JS = "mathjax/es5/tex-mml-chtml.js"
REQUIRE_JS = "requirejs/require.js"
WIDGETS_EMBED_JS = "html-manager/dist/embed-amd.js"
#: Third-party widget modules (none in this book so far) still come from the npm CDN.
WIDGETS_CDN = "https://cdn.jsdelivr.net/npm/"


def _use_local_copies(app, config):
    vendor = Path(app.confdir) / VENDOR_DIR
    if not vendor.is_dir():
        logger.info("offline_assets: %s not found; MathJax and widget scripts load from CDNs", vendor)
        return
    config.html_static_path = list(config.html_static_path) + [str(vendor)]
    if (vendor / MATHJAX_JS).exists():
        config.mathjax_path = MATHJAX_JS
        logger.info("offline_assets: MathJax from _static/%s", MATHJAX_JS)
    if (vendor / REQUIRE_JS).exists() and (vendor / WIDGETS_EMBED_JS).exists():
        config.nb_ipywidgets_js = {
            REQUIRE_JS: {},
            WIDGETS_EMBED_JS: {"data-jupyter-widgets-cdn": WIDGETS_CDN},
        }
        logger.info("offline_assets: widget scripts from _static/")


#: @jupyter-widgets/html-manager 1.x typesets widget labels with MathJax 2's
#: ``MathJax.Hub.Queue``; the book loads MathJax 3, which has no ``Hub``, so every widget
#: snapshot logged "Cannot read properties of undefined (reading 'Queue')". This gives MathJax 3
#: a ``Hub`` whose ``Queue`` typesets with MathJax 3 (before MathJax loads, and once it has).
MATHJAX2_HUB_SHIM = """(function () {
  var hub = {Queue: function (job) {
    var m = window.MathJax;
    if (Array.isArray(job) && job[0] === "Typeset" && m && m.typesetPromise) {
      m.typesetPromise(job[2] ? [job[2]] : undefined);
    }
  }};
  var config = window.MathJax = window.MathJax || {};
  config.Hub = hub;
  var startup = config.startup = config.startup || {};
  startup.ready = function () { window.MathJax.startup.defaultReady(); window.MathJax.Hub = hub; };
})();"""


def _add_mathjax2_hub(app, pagename, templatename, context, doctree):
    """After sphinx.ext.mathjax has set ``window.MathJax`` (priority 500), before MathJax loads."""
    app.builder.add_js_file("", body=MATHJAX2_HUB_SHIM)


def setup(app):
    # priority < 500: run before myst-nb reads nb_ipywidgets_js at builder-inited
    app.connect("config-inited", _use_local_copies, priority=400)
    app.connect("html-page-context", _add_mathjax2_hub, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
