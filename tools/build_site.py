"""Build the course site into `_docs/`, and README.md from nbs/index.ipynb.

Where Quarto is installed this runs `nbdev-docs` (the nbdev site, configured by nbs/_quarto.yml, nbs/sidebar.yml,
nbs/nbdev.yml, nbs/styles.css). Without Quarto it builds the site with Sphinx:

1. each notebook goes through nbdev's own docs processors (`FilterDefaults`, what `nbdev-proc-nbs` runs): `show_doc`
   rendered after every exported definition, `#| hide`/`#| export` cells dropped, the title cell turned into front
   matter. The processed copies go to `_proc/nbdev/` (or `--proc`), never into nbs/;
2. each processed notebook becomes a page source in `_proc/src/`, named as nbdev names its page (03_losses.ipynb ->
   losses.html): the Quarto cell options left in the code (`#| echo: false`, `#| output: false`, `#| code-fold`)
   become myst-nb cell tags, Quarto callouts become MyST admonitions, and nbs/sidebar.yml becomes the table of
   contents (its sections as captions);
3. Sphinx with myst-nb renders the stored outputs (no notebook runs: `nb_execution_mode = "off"`) in the Furo theme,
   configured by tools/sphinx/conf.py: light and dark mode, search, previous/next links, MathJax served from the site.

Why Sphinx + myst-nb + Furo: myst-nb reads .ipynb with stored outputs and MyST markdown (math, admonitions, page
links), everything installs from PyPI, and the build is offline, search index included. jupyter-book 2 wraps the
Node-based MyST engine, which fetches its site theme from the network; mkdocs-jupyter embeds nbconvert's HTML in
MkDocs pages, where math and search take extra plugins and vendored MathJax by hand. Furo, rather than
pydata-sphinx-theme, lists every chapter in one left sidebar under its part (pydata puts top-level pages in a navbar).

Where nbdev would stop the whole build, this one warns and goes on: chapters listed in nbs/sidebar.yml but not written
yet are skipped; a chapter whose definitions fail to import keeps its stored outputs.

Usage: python tools/build_site.py [--out DIR] [--proc DIR] [--builder auto|quarto|sphinx] [--no-readme] [--force] [--nbs DIR]
"""
from __future__ import annotations
import argparse, html, json, os, re, shutil, subprocess, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
HERE = Path(__file__).resolve().parent
CONF = HERE / 'sphinx'
MARKER = '.bioss_site'  # marks an output folder this script wrote, so it may be emptied on the next build
PROC_MARKER = '.bioss_site_proc'  # nbdev-docs must not reuse notebooks this script processed (see build_quarto)
ASSET_EXTS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.pdf', '.csv'}
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'


def log(msg): print(msg, flush=True)
def warn(msg): print(f'warning: {msg}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configuration: pyproject, sidebar.yml
def project_config() -> dict:
    "Title and hosted-docs prefix, from pyproject.toml (as nbdev reads them)."
    try: import tomllib
    except ImportError: import tomli as tomllib  # Python 3.10
    cfg = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    proj, nbd = cfg.get('project', {}), cfg.get('tool', {}).get('nbdev', {})
    doc = proj.get('urls', {}).get('Documentation', '')
    return dict(title=nbd.get('title') or proj.get('name', 'docs'), doc_url=doc.rstrip('/') + '/' if doc else '')


def read_sidebar(path: Path | None = None) -> list:
    "The sidebar tree of nbs/sidebar.yml: a list of file names (str) and sections {'section': title, 'contents': [...]}."
    import yaml
    path = path or NBS / 'sidebar.yml'
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    contents = ((data or {}).get('website') or {}).get('sidebar') or {}
    if isinstance(contents, list): contents = contents[0] if contents else {}
    def norm(items):
        res = []
        for it in items or []:
            if isinstance(it, str): res.append(it)
            elif isinstance(it, dict) and 'contents' in it:
                res.append({'section': str(it.get('section') or it.get('text') or ''), 'contents': norm(it['contents'])})
            elif isinstance(it, dict) and it.get('href'): res.append(str(it['href']))
        return res
    return norm(contents.get('contents'))


def flatten(tree) -> list[str]:
    "File names of a sidebar tree, in course order."
    out = []
    for it in tree: out.extend(flatten(it['contents']) if isinstance(it, dict) else [it])
    return out


def page_name(nb_file: str) -> str:
    "The page a notebook becomes, as nbdev names it: nbs/00_core.ipynb -> core.html, index.ipynb -> index.html."
    p = Path(nb_file)
    return str(p.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', p.name.lower())).with_suffix('.html'))


def site_notebooks(nbs: Path | None = None) -> list[Path]:
    "Notebooks nbdev publishes: not starting with `_` or `.`, in no folder starting with `_` or `.`."
    nbs, res = nbs or NBS, []
    for p in sorted(nbs.rglob('*.ipynb')):
        rel = p.relative_to(nbs)
        if any(part.startswith(('_', '.')) for part in rel.parts): continue
        res.append(p)
    return res


# ---------------------------------------------------------------- step 1: nbdev's docs processors
def _imports_of_mixed_cell(cell):
    """The import statements of a cell that mixes imports with other code (and is not exported), else None.

    nbdev's `exec_show_docs` runs every cell that contains an import, so that `show_doc` finds the names; for a cell that
    also computes (a plot, a benchmark) that means running it again and replacing the outputs its author stored.
    The site runs only such a cell's imports and keeps its stored outputs."""
    import ast
    if cell.cell_type != 'code' or not cell.get('source'): return None
    d = getattr(cell, 'directives_', None) or {}
    if d.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or str(d.get('eval', '')).lower() == 'false': return None
    try: tree = ast.parse(cell.source)
    except SyntaxError: return None  # magics: leave it to nbdev
    body = tree.body
    imps = [t for t in body if isinstance(t, (ast.Import, ast.ImportFrom))]
    if not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)) or len(imps) == len(body): return None
    if any(isinstance(n, ast.Call) and getattr(n.func, 'id', None) == 'show_doc' for n in ast.walk(tree)): return None
    return '\n'.join(ast.get_source_segment(cell.source, t) for t in imps)


def _first_code_line(cell) -> str:
    return next((l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith('#|')), '')


def _proc_one(job):
    "Worker: run nbdev's docs processors on one notebook. Returns (src, ok, messages)."
    src, dst, root = job
    os.chdir(root)
    os.environ['IN_TEST'] = '1'  # as nbdev's own processing does
    os.environ.setdefault('OMP_NUM_THREADS', '1')  # two workers, small ops: extra threads per worker only contend
    msgs = []
    try:
        from fastcore.nbio import read_nb, write_nb
        from nbdev.processors import FilterDefaults, exec_show_docs
        import copy

        class exec_show_docs_tolerant(exec_show_docs):
            "nbdev's `exec_show_docs`, but a failing cell keeps its stored outputs and the page is still built."
            def __call__(self, cell):
                imports = _imports_of_mixed_cell(cell) if getattr(self, 'k', None) and self.nb.has_docs_ else None
                if imports is not None:  # only the imports: the cell's stored outputs stay, and slow cells stay unrun
                    msgs.append('a cell mixes imports with other code, so nbdev-docs runs all of it again while documenting '
                                f'(slow, and it fails if the cell needs earlier unexported cells): {_first_code_line(cell)[:60]!r}')
                    if imports: self.k.run(imports)
                    if self.k.exc:
                        msgs.append(f'an import failed while documenting ({type(self.k.exc).__name__}: {self.k.exc}); '
                                    'nbdev-docs would stop here')
                    self.k.exc = None
                    return
                saved = copy.deepcopy(cell.get('outputs'))
                try: super().__call__(cell)
                except Exception as e:
                    first = str(e).splitlines()[-1] if str(e) else type(e).__name__
                    msgs.append(f'nbdev could not run the cell {_first_code_line(cell)[:60]!r} while documenting ({first[:160]}); '
                                'nbdev-docs would stop here. The page keeps its stored outputs')
                    if saved is not None: cell['outputs'] = saved
                    self.k.exc = None  # the shell goes on with the next cell

        class SiteFilter(FilterDefaults):
            def base_procs(self):
                return [exec_show_docs_tolerant if p is exec_show_docs else p for p in super().base_procs()]

        nb = read_nb(src)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter('always')  # the mixed-cell warning is reported above, in words for this site
            SiteFilter()(nb)
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        write_nb(nb, dst)
        return str(src), True, list(dict.fromkeys(msgs))
    except Exception as e:
        msgs.append(f'nbdev processing failed ({type(e).__name__}: {str(e)[:300]}); the page shows the stored notebook')
        return str(src), False, msgs


def process_notebooks(files: list[Path], proc: Path, workers: int = 2, force: bool = False) -> dict:
    "Process `files` into `proc` (kept between builds: a notebook is redone when it, or this script, changed)."
    newest_tool = max(Path(__file__).stat().st_mtime, (ROOT / 'pyproject.toml').stat().st_mtime)
    jobs, result = [], {}
    for src in files:
        dst = proc / src.relative_to(NBS)
        result[str(src)] = dst
        if not force and dst.exists() and dst.stat().st_mtime > max(src.stat().st_mtime, newest_tool): continue
        jobs.append((str(src), str(dst), str(ROOT)))
    if not jobs: return result
    proc.mkdir(parents=True, exist_ok=True)
    log(f'processing {len(jobs)} notebook(s) with nbdev ({min(workers, len(jobs))} worker(s))')
    if workers <= 1 or len(jobs) == 1: outs = map(_proc_one, jobs)
    else:
        if str(HERE) not in sys.path: sys.path.insert(0, str(HERE))
        import build_site  # spawned workers find the function by module name, whether this file runs as a script or not
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context('spawn')) as ex:
            outs = list(ex.map(build_site._proc_one, jobs))
    for src, ok, msgs in outs:
        name = Path(src).relative_to(NBS)
        for m in msgs: warn(f'{name}: {m}')
        if not ok: result[src] = None
        elif any('could not run' in m or 'import failed' in m for m in msgs): os.utime(result[src], (0, 0))  # redo next time
    return result


# ---------------------------------------------------------------- step 2: processed notebook -> myst-nb page source
_re_fence = re.compile(r'^\s*(```+|~~~+)')
_re_div = re.compile(r'^(\s*)(:{3,})\s*(\{[^}]*\}|[\w-]+)?\s*$')
_re_attr_tok = re.compile(r'''([#.][\w:-]+)|([\w-]+)=("[^"]*"|'[^']*'|[^\s}]+)''')
_re_opt = re.compile(r'^\s*#\|\s?(.*)$')
_re_progress = re.compile(r'\d+%\|.*\|.*(it/s|s/it|\?it/s)')
CALLOUTS = {'note', 'tip', 'warning', 'important', 'caution'}


def _attrs(spec: str) -> tuple[str, list, dict]:
    "Pandoc attributes `{#id .cls key=val}` -> (id, classes, other)."
    ident, classes, kv = '', [], {}
    for m in _re_attr_tok.finditer(spec):
        if m.group(1):
            if m.group(1)[0] == '#': ident = m.group(1)[1:]
            else: classes.append(m.group(1)[1:])
        else: kv[m.group(2)] = m.group(3).strip('"\'')
    return ident, classes, kv


def _inline(line: str) -> str:
    "Quarto's inline attributes on one line: links keep only `#id`/`.class` (MyST's attrs_inline), shortcodes go."
    def link(m):
        ident, classes, _ = _attrs(m.group(2))
        keep = ' '.join(([f'#{ident}'] if ident else []) + [f'.{c}' for c in classes])
        return m.group(1) + (f'{{{keep}}}' if keep else '')
    line = re.sub(r'((?<!!)\[[^\]]*\]\([^)\s]+\))\{([^}]*)\}', link, line)
    line = re.sub(r'(`[^`]+`)\{\.[^}]*\}', r'\1', line)  # `code`{.python}
    return re.sub(r'\{\{<.*?>\}\}', '', line)


def quarto_to_myst(md: str, link_map: dict | None = None) -> str:
    "Quarto markdown -> MyST: callouts and fenced divs become directives, heading ids labels, chapter links page links."
    out, in_code, fence = [], False, ''
    for line in md.split('\n'):
        m = _re_fence.match(line)
        if m:
            if not in_code:
                in_code, fence = True, m.group(1)[0] * 3
                line = re.sub(r'^(\s*(?:```+|~~~+))\s*\{\.?([\w+-]+)[^}]*\}', r'\1\2', line)  # ```{.python filename=..}
            elif line.strip().startswith(fence): in_code = False
            out.append(line); continue
        if in_code: out.append(line); continue
        d = _re_div.match(line)
        if d:
            indent, colons, spec = d.groups()
            if spec:  # opening: ::: {.callout-note title="..."} / ::: {.cls} / ::: cls
                ident, classes, kv = _attrs(spec) if spec.startswith('{') else ('', [spec], {})
                kind = next((c[len('callout-'):] for c in classes if c.startswith('callout-')), None)
                if kind and kv.get('title'): out += [f'{indent}{colons}{{admonition}} {kv["title"]}', f':class: {kind}']
                elif kind: out.append(f'{indent}{colons}{{{kind if kind in CALLOUTS else "note"}}}')
                else: out += [f'{indent}{colons}{{container}} {" ".join(classes)}'.rstrip()]
                if ident: out.append(f':name: {ident}')
                out.append('')
            else: out.append(f'{indent}{colons}')
            continue
        h = re.match(r'^(#{1,6}\s+.*?)\s*\{([^}]*)\}\s*$', line)
        if h and re.search(r'[#.]|=', h.group(2)):
            ident = _attrs(h.group(2))[0]
            if ident: out.append(f'({ident})=')
            line = h.group(1)
        line = re.sub(r'(\$\$)\s*\{#([\w:-]+)\}', r'\1 (\2)', line)  # $$ ... $$ {#eq-x}
        if link_map is not None:
            def nb_link(m):
                target, frag = m.group(1), (m.group(2) or '').lower()
                page = link_map.get(Path(target).name)
                return f']({page}{frag})' if page else m.group(0)
            line = re.sub(r'\]\((?!\w+://)([^)\s#]+\.ipynb)(#[^)\s]*)?\)', nb_link, line)
        out.append(_inline(line))
    return '\n'.join(out)


def split_options(src: str) -> tuple[dict, str]:
    "Leading `#| key: value` lines of a code cell -> (options, code without them)."
    lines, opts = src.split('\n'), {}
    i = 0
    while i < len(lines) and (_re_opt.match(lines[i]) or (not lines[i].strip() and opts)):
        m = _re_opt.match(lines[i])
        if m:
            k, _, v = m.group(1).partition(':')
            k = k.strip()
            if k: opts[k] = v.strip().strip('"\'') if _ else 'true'
        i += 1
    return opts, '\n'.join(lines[i:]).strip('\n')


def _false(v) -> bool: return str(v).strip().lower() in ('false', 'no', '0')


def _is_progress_bar(o) -> bool:
    "A tqdm progress bar (a widget, or its text): noise on a static page."
    data = o.get('data', {})
    text = data.get('text/plain', '') if WIDGET_MIME in data else o.get('text', '') if o.get('name') == 'stderr' else ''
    text = ''.join(text) if isinstance(text, list) else text
    return bool(text) and all(_re_progress.search(l) for l in text.replace('\r', '\n').splitlines() if l.strip())


def _widget_only(o) -> bool:
    """A live widget (an explorer of sliders): on a static page its text/plain fallback is only the repr
    `interactive(children=(FloatSlider(...` , so the output goes; the chapter's static plot beside it carries the lesson.
    A widget output that also stores a picture keeps the picture."""
    data = o.get('data', {})
    if WIDGET_MIME not in data: return False
    for k in (WIDGET_MIME, 'text/plain'): data.pop(k, None)
    return not data


def _show_doc_anchors(md: str) -> str:
    """show_doc's `---` rule (a section break, which docutils refuses inside an output) becomes an HTML rule; a heading
    `### Trainer.fit` gets the anchor Quarto gives it (`#trainer.fit`), which nbdev's links use (MyST's slug of a plain
    name, `#contrastivehinge`, `#check_choice`, is already Quarto's)."""
    md = re.sub(r'^---[ \t]*$', '<hr class="show-doc">', md, flags=re.M)
    return re.sub(r'^#{2,4} (\S*[^\w\s-]\S*)[ \t]*$', lambda m: f'<span id="{html.escape(m.group(1).lower())}"></span>\n\n{m.group(0)}',
                  md, flags=re.M)


def to_page(nb: dict, link_map: dict, fallback_title: str) -> tuple[dict, str]:
    "A processed notebook (JSON) -> the page source myst-nb reads, in place. Returns (notebook, title)."
    import yaml
    fm, cells = {}, []
    for c in nb['cells']:
        src = c.get('source', '')
        src = ''.join(src) if isinstance(src, list) else src
        c['source'] = src
        if c['cell_type'] == 'raw':
            m = re.match(r'^---\s*\n(.*?)\n---\s*$', src.strip(), re.S)
            if m and not fm:
                try: fm = yaml.safe_load(m.group(1)) or {}
                except yaml.YAMLError: pass
            continue  # raw cells are for other formats (LaTeX, Quarto): nothing to show on a page
        if c['cell_type'] == 'markdown':
            if src.strip(): c['source'] = quarto_to_myst(src, link_map); cells.append(c)
            continue
        if c['cell_type'] != 'code': continue
        opts, code = split_options(src)
        if _false(opts.get('include', True)): continue
        c['source'] = code
        meta = c.setdefault('metadata', {})
        tags = set(meta.get('tags', []))
        if _false(opts.get('echo', True)) or not code.strip(): tags.add('remove-input')
        if _false(opts.get('output', True)): tags.add('remove-output')
        if opts.get('code-fold') and not _false(opts['code-fold']) and 'remove-input' not in tags:
            tags.add('hide-input')  # folded, under Quarto's summary line (nbdev: "Exported source")
            if opts.get('code-summary'): meta['mystnb'] = dict(code_prompt_show=opts['code-summary'], code_prompt_hide=opts['code-summary'])
        outputs = [o for o in c.get('outputs', []) if not _is_progress_bar(o) and not _widget_only(o)]
        for o in outputs:
            data = o.get('data', {})
            md = data.get('text/markdown')
            if md is not None: data['text/markdown'] = _show_doc_anchors(quarto_to_myst(''.join(md) if isinstance(md, list) else md, link_map))
        c['outputs'] = outputs
        if not code.strip() and not outputs: continue
        meta['tags'] = sorted(tags)
        cells.append(c)
        cap = opts.get('fig-cap') or opts.get('tbl-cap')
        if cap and outputs: cells.append(dict(cell_type='markdown', metadata={}, source=f'{{.figure-caption}}\n{cap}'))
    title = str(fm.get('title') or '')
    if not title:  # no front matter: the first `# Title` cell gives it
        for c in cells:
            mt = c['cell_type'] == 'markdown' and re.match(r'^#\s+(.+)', c['source'].strip())
            if mt: title = mt.group(1).strip(); break
    if not title:
        title = fallback_title
        cells.insert(0, dict(cell_type='markdown', metadata={}, source=f'# {title}'))
    elif fm.get('title'):
        desc = str(fm.get('description') or '').strip()
        head = f'# {title}' + (f'\n\n{{.description}}\n{quarto_to_myst(desc, link_map)}' if desc else '')
        cells.insert(0, dict(cell_type='markdown', metadata={}, source=head))
    for i, c in enumerate(cells):  # nbdev leaves working attributes (has_sd, idx_, ...) that nbformat rejects
        for k in [k for k in c if k not in ('cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments')]:
            del c[k]
        c.setdefault('id', f'site{i:04d}')
        if c['cell_type'] == 'code': c.setdefault('execution_count', None); c.setdefault('outputs', [])
        c['metadata'].pop('execution', None)
    nb['cells'] = cells
    nb.setdefault('metadata', {}).pop('widgets', None)
    nb['nbformat'], nb['nbformat_minor'] = 4, max(nb.get('nbformat_minor', 5), 5)
    return nb, title


def toctree(tree, pages: dict) -> str:
    "The root page's table of contents: nbs/sidebar.yml's chapters in order, each section a caption."
    blocks, loose = [], []
    def entries(items): return [pages[f] for f in flatten(items) if f in pages and pages[f] != 'index']
    for it in tree:
        if isinstance(it, dict):
            if loose: blocks.append((None, loose)); loose = []
            if entries(it['contents']): blocks.append((it['section'], entries(it['contents'])))
        else: loose += entries([it])
    if loose: blocks.append((None, loose))
    return '\n\n'.join('```{toctree}\n:hidden:\n' + (f':caption: {cap}\n' if cap else '') + '\n' + '\n'.join(es) + '\n```'
                       for cap, es in blocks)


def _write_if_changed(path: Path, text: str):
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True); path.write_text(text)


def write_sources(src_dir: Path, files: list[Path], processed: dict, tree: list) -> dict:
    "Page sources for Sphinx in `src_dir`, named by page. Returns {notebook (relative to nbs/): page name}."
    pages = {str(p.relative_to(NBS)): page_name(str(p.relative_to(NBS)))[:-len('.html')] for p in files}
    link_map = {Path(rel).name: page + '.ipynb' for rel, page in pages.items()}
    written = {}
    for p in files:
        rel = str(p.relative_to(NBS))
        dst = processed.get(str(p))
        try:
            nb = json.loads(Path(dst if dst and Path(dst).exists() else p).read_text())
            if not dst: nb['cells'] = [c for c in nb['cells'] if not (c['cell_type'] == 'code' and re.search(
                r'^\s*#\|\s*(hide|export|exporti|default_exp)\b', ''.join(c['source']), re.M))]
            nb, _ = to_page(nb, link_map, Path(rel).stem)
        except Exception as e:  # a notebook being saved right now, say: the others still get their pages
            warn(f'nbs/{rel}: could not be read ({type(e).__name__}: {str(e)[:200]}): left out of the site'); continue
        if pages[rel] == 'index':
            nb['cells'].append(dict(cell_type='markdown', metadata={}, id='sitetoc0', source=toctree(tree, pages)))
        _write_if_changed(src_dir / (pages[rel] + '.ipynb'), json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        written[rel] = pages[rel]
    keep = {src_dir / (pg + '.ipynb') for pg in written.values()}
    for old in src_dir.rglob('*.ipynb'):  # a chapter renamed or deleted: its page goes too
        if old not in keep: old.unlink()
    for q in NBS.rglob('*'):  # images and other files the notebooks link to, at the same relative paths
        r = q.relative_to(NBS)
        if q.is_file() and q.suffix.lower() in ASSET_EXTS and not any(s.startswith(('_', '.')) for s in r.parts):
            (src_dir / r).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(q, src_dir / r)
    return written


# ---------------------------------------------------------------- step 3: Sphinx
def _prepare_out(out: Path):
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists() and out.resolve() != (ROOT / '_docs').resolve():
            sys.exit(f'--out {out} is not empty and was not written by this script: choose an empty or new folder')
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text('written by tools/build_site.py\n')


def local_links(out: Path, doc_url: str):
    """Links to the hosted docs (nbdev writes them for documented names) -> the same page of this site. A name with no
    anchor of its own (a method documented with its class, say) links to its class's anchor, else to the page."""
    if not doc_url: return
    rx = re.compile(r'href="' + re.escape(doc_url) + r'([^"#]*)(?:#([^"]*))?"')
    ids = {f.name: set(re.findall(r'\sid="([^"]+)"', f.read_text())) for f in out.glob('*.html')}
    def local(m):
        name, frag = m.group(1) or 'index.html', m.group(2)
        if name not in ids: return m.group(0)
        while frag and frag not in ids[name]: frag = frag.rpartition('.')[0]
        return f'href="{name}' + (f'#{frag}"' if frag else '"')
    for f in out.glob('*.html'):
        text = f.read_text()
        new = rx.sub(local, text)
        if new != text: f.write_text(new)


def build_sphinx(out: Path, proc: Path, workers: int = 2, force: bool = False) -> dict:
    "Build the site without Quarto. Returns {notebook (relative to nbs/): page name}."
    t0 = time.time()
    tree, files = read_sidebar(), site_notebooks()
    names = {str(p.relative_to(NBS)) for p in files}
    for f in flatten(tree):
        if f not in names: warn(f'nbs/sidebar.yml lists {f}, which does not exist yet: left out of the site')
    for f in sorted(names - set(flatten(tree))):
        warn(f'nbs/{f} is not in nbs/sidebar.yml: its page is built but the sidebar does not link it')
    (proc).mkdir(parents=True, exist_ok=True)
    (proc / PROC_MARKER).write_text('notebooks processed by tools/build_site.py (only their imports run for mixed cells)\n')
    processed = process_notebooks(files, proc / 'nbdev', workers=workers, force=force)
    t1 = time.time()
    pages = write_sources(proc / 'src', files, processed, tree)
    if 'index.ipynb' not in pages: sys.exit('nbs/index.ipynb is missing: the site needs it as its home page')
    from sphinx.cmd.build import build_main
    html = proc / 'html'  # Sphinx's output; myst-nb writes beside it (jupyter_execute/), so inside the build folder
    args = ['-b', 'html', '-c', str(CONF), '-d', str(proc / 'doctrees'), '-q', '-j', str(max(1, workers)), str(proc / 'src'), str(html)]
    if force: args.insert(0, '-E')
    rc = build_main(args)
    if rc: sys.exit(f'sphinx-build failed (exit status {rc}): its message is above')
    _prepare_out(out)
    current = {pg + '.html' for pg in pages.values()} | {'genindex.html', 'search.html'}
    def skip(folder, names):  # Sphinx's bookkeeping, and pages of chapters since deleted or renamed
        return [n for n in names if n in ('.buildinfo', '_sources', '.doctrees')
                or (Path(folder) == html and n.endswith('.html') and n not in current)]
    shutil.copytree(html, out, dirs_exist_ok=True, ignore=skip)
    (out / '.nojekyll').write_text('')
    local_links(out, project_config()['doc_url'])
    order = [pages[f] + '.html' for f in flatten(tree) if f in pages]
    log(f'wrote {len(pages)} page(s) to {out} in {time.time() - t0:.1f}s ({time.time() - t1:.1f}s for Sphinx): ' + ', '.join(order))
    return pages


def build_quarto(out: Path):
    "The nbdev site with Quarto: `nbdev-docs` writes `_docs/`."
    if not shutil.which('quarto'): sys.exit('--builder quarto: quarto is not installed (https://quarto.org)')
    exe = Path(sys.executable).with_name('nbdev-docs')
    cmd = [str(exe) if exe.exists() else 'nbdev-docs']
    if (ROOT / '_proc' / PROC_MARKER).exists(): shutil.rmtree(ROOT / '_proc')  # processed the nbdev way from scratch
    log('quarto found: running ' + ' '.join(cmd))
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode: sys.exit(f'nbdev-docs failed (exit status {r.returncode}): its message is above')
    if out.resolve() != (ROOT / '_docs').resolve():
        if out.exists(): shutil.rmtree(out)
        shutil.copytree(ROOT / '_docs', out)


def main(argv=None):
    global NBS
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=ROOT / '_docs', help='where the site goes (default: _docs/)')
    ap.add_argument('--proc', type=Path, default=None,
                    help='build folder for processed notebooks and page sources (default: _proc/; a temporary folder when --out is given)')
    ap.add_argument('--builder', choices=('auto', 'quarto', 'sphinx'), default='auto',
                    help='auto: nbdev-docs where quarto is installed, else Sphinx')
    ap.add_argument('--no-readme', action='store_true', help='do not regenerate README.md')
    ap.add_argument('--force', action='store_true', help='reprocess every notebook and rebuild every page')
    ap.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1), help='processes for nbdev and Sphinx (default: 2)')
    ap.add_argument('--nbs', type=Path, default=NBS, help='the notebooks folder, with its sidebar.yml (default: nbs/)')
    a = ap.parse_args(argv)
    out = a.out.resolve()
    NBS = a.nbs.resolve()
    use_quarto = a.builder == 'quarto' or (a.builder == 'auto' and shutil.which('quarto'))
    if use_quarto: build_quarto(out)
    elif a.proc: build_sphinx(out, a.proc.resolve(), a.workers, a.force)
    elif out == (ROOT / '_docs').resolve(): build_sphinx(out, ROOT / '_proc', a.workers, a.force)
    else:
        with tempfile.TemporaryDirectory(prefix='bioss_proc_') as d: build_sphinx(out, Path(d), a.workers, True)
    if not a.no_readme: subprocess.run([sys.executable, str(HERE / 'make_readme.py')], cwd=ROOT, check=True)


if __name__ == '__main__':
    main()
