"""Sphinx configuration of the course site, used by tools/build_site.py (not by nbdev-docs, which reads nbs/_quarto.yml).

The pages are nbdev's processed notebooks, read by myst-nb with their stored outputs (nothing runs during the build),
in the Furo theme (light and dark mode, Sphinx's own search). Math is typeset by MathJax 3 from the
sphinx-mathjax-offline package, copied into the site: the pages load nothing from the network.
"""
from pathlib import Path
import shutil

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

try: import tomllib
except ImportError: import tomli as tomllib  # Python 3.10
_cfg = tomllib.loads((ROOT / 'pyproject.toml').read_text())
_proj, _nbdev = _cfg.get('project', {}), _cfg.get('tool', {}).get('nbdev', {})

project = _nbdev.get('title') or _proj.get('name', 'docs')
html_title = project
author = ', '.join(a.get('name', '') for a in _proj.get('authors', [])) or project
copyright = author
root_doc = 'index'
extensions = ['myst_nb']
exclude_patterns = ['_build', '**.ipynb_checkpoints']
suppress_warnings = ['toc.not_included']  # build_site.py warns about a chapter missing from nbs/sidebar.yml

# myst-nb: the stored outputs are the docs; never execute
nb_execution_mode = 'off'
nb_render_markdown_format = 'myst'  # show_doc and display(Markdown(...)) outputs: math, tables, links
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'attrs_inline', 'attrs_block', 'deflist']
myst_heading_anchors = 3
myst_dmath_double_inline = True

# theme: Furo, a left sidebar with the chapters under their parts, prev/next links, light/dark/auto, search
html_theme = 'furo'
html_static_path = [str(HERE / 'static')]
html_css_files = ['site.css']
html_copy_source = False  # the search page's excerpts come from the built pages (see PAGE_TEXT below), not _sources
html_show_sourcelink = False
html_last_updated_fmt = None
pygments_style = 'friendly'
pygments_dark_style = 'monokai'
html_theme_options = {'navigation_with_keys': True}  # no "edit this page": the pages are built from processed copies

# math: MathJax 3 from a Python package, copied into _static/mathjax (no CDN)
mathjax_path = 'mathjax/tex-chtml.js'
MATHJAX_PARTS = ['tex-chtml.js', 'input/tex/extensions', 'output/chtml/fonts/woff-v2', 'ui', 'a11y', 'adaptors']


def mathjax_dir() -> Path:
    "MathJax's files as the sphinx-mathjax-offline package ships them."
    import importlib.util
    spec = importlib.util.find_spec('sphinx-mathjax-offline') or importlib.util.find_spec('sphinx_mathjax_offline')
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('the docs need MathJax from the sphinx-mathjax-offline package: pip install -e ".[docs]"')
    return Path(list(spec.submodule_search_locations)[0]) / 'static' / 'mathjax'


def _copy_mathjax(app, exc):
    if exc is not None or app.builder.format != 'html': return
    src, dst = mathjax_dir(), Path(app.outdir) / '_static' / 'mathjax'
    for part in MATHJAX_PARTS:
        s, d = src / part, dst / part
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir(): shutil.copytree(s, d, dirs_exist_ok=True)
        else: shutil.copy2(s, d)


# search excerpts: Sphinx's search page fetches each result's page to show an excerpt under it. A browser refuses
# fetch() to a page opened from files (file://), so the site also carries each page's text as a small script,
# _static/page_text/<page>.js, and on the search page (only) _static/search_files.js answers those fetches from them.
PAGE_TEXT = 'page_text'


def _page_text_html(html: str) -> str:
    "A page's main content as the search excerpt needs it: its text, inside the sections (with their ids) it is in."
    import bs4
    from html import escape
    main = bs4.BeautifulSoup(html, 'html.parser').find(attrs={'role': 'main'})
    if main is None: return ''
    for t in main.find_all(['script', 'style']) + main.find_all(class_='headerlink'): t.decompose()
    def walk(node):
        if isinstance(node, bs4.NavigableString):
            return '' if isinstance(node, (bs4.Comment, bs4.Doctype)) else escape(str(node), quote=False)
        inner = ''.join(walk(c) for c in node.children)
        return f'<section id="{escape(node["id"])}">{inner}</section>' if node.name == 'section' and node.get('id') else inner
    return f'<div role="main">{walk(main)}</div>'


def _write_page_text(app, exc):
    if exc is not None or app.builder.format != 'html': return
    import json
    out = Path(app.outdir)
    dst = out / '_static' / PAGE_TEXT
    dst.mkdir(parents=True, exist_ok=True)
    for docname in app.env.found_docs:
        page = out / (docname + '.html')
        if not page.exists(): continue
        js = (f'(window.__pageText = window.__pageText || {{}})[{json.dumps(docname)}] = '
              + json.dumps(_page_text_html(page.read_text(encoding='utf-8'))) + ';\n')
        (dst / (docname + '.js')).parent.mkdir(parents=True, exist_ok=True)
        (dst / (docname + '.js')).write_text(js, encoding='utf-8')


def _search_page_scripts(app, pagename, templatename, context, doctree):
    if pagename == 'search': app.add_js_file('search_files.js', priority=200)  # before searchtools.js runs a query


def setup(app):
    mathjax_dir()  # fail before the build, not after it
    app.connect('build-finished', _copy_mathjax)
    app.connect('build-finished', _write_page_text)
    app.connect('html-page-context', _search_page_scripts)
