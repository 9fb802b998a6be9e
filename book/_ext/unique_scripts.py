"""Sphinx extension: each page loads each script once.

sphinx-togglebutton and sphinx-thebe end up with their inline configuration scripts twice in
a Jupyter Book build, once with the file name ``None`` and once with ``""``, which Sphinx does
not see as the same script. A page then declared ``const THEBE_JS_URL`` twice: a console error
("Identifier 'THEBE_JS_URL' has already been declared") on every page, which
``scripts/check_pages.py`` reports. This drops repeats of a script (same file, same inline
body, same attributes) from each page, keeping the first.
"""


def _key(script):
    """File and attributes (an inline script's body is one); ``None`` and ``""`` both mean inline."""
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _unique(scripts):
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    context["script_files"] = _unique(context.get("script_files", []))


def setup(app):
    # After every other handler (they may add page scripts); Sphinx then sorts by priority.
    app.connect("html-page-context", _drop_repeated_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
