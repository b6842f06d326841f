"""Build the course site into `_docs/`, and README.md from nbs/index.ipynb.

Where Quarto is installed this runs `nbdev-docs` (the nbdev site, configured by nbs/_quarto.yml, nbs/sidebar.yml,
nbs/nbdev.yml, nbs/styles.css). Without Quarto it builds an equivalent static site itself:

1. each notebook goes through nbdev's own docs processors (`FilterDefaults`, what `nbdev-proc-nbs` runs): `show_doc`
   rendered after every exported definition, `#| hide`/`#| export` cells dropped, `#| exports` source kept and folded,
   the title cell turned into front matter. Processed notebooks go to `_proc/` (or `--proc`);
2. nbconvert renders each one to HTML (tools/site_template/bioss), plots embedded as images;
3. the page around it (tools/site_template/page.html.j2) carries a sidebar in the course order of nbs/sidebar.yml,
   with its sections, previous/next links and a table of contents. Quarto-only syntax left in the text
   (`#|` option lines, `:::` fenced divs, `{#id .class key=value}` attributes) becomes plain HTML.

Where nbdev would stop the whole build, this one warns and goes on: chapters listed in nbs/sidebar.yml but not written
yet are skipped; a chapter whose definitions fail to import (an earlier chapter not exported yet, say) keeps its stored
outputs. A cell that mixes imports with other code gets only its imports run (nbdev reruns the whole cell), so the page
shows the outputs its author stored; the build warns about it, since `nbdev-docs` would rerun it.

Usage: python tools/build_site.py [--out DIR] [--proc DIR] [--builder auto|quarto|nbconvert] [--no-readme] [--force] [--nbs DIR]
"""
from __future__ import annotations
import argparse, html, os, re, shutil, subprocess, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / 'site_template'
MARKER = '.bioss_site'  # marks an output folder this script wrote, so it may be emptied on the next build
PROC_MARKER = '.bioss_site_proc'  # nbdev-docs must not reuse notebooks this script processed (see build_quarto)
MATHJAX_URL = 'https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'
ASSET_EXTS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.pdf', '.csv'}
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'


def log(msg): print(msg, flush=True)
def warn(msg): print(f'warning: {msg}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------- configuration: pyproject, sidebar.yml
def project_config() -> dict:
    "Title, description, hosted-docs prefix and repository URL, from pyproject.toml (as nbdev reads them)."
    try: import tomllib
    except ImportError: import tomli as tomllib  # Python 3.10
    cfg = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    proj, nbd = cfg.get('project', {}), cfg.get('tool', {}).get('nbdev', {})
    repo = proj.get('urls', {}).get('Repository', '')
    doc = proj.get('urls', {}).get('Documentation', '')
    return dict(title=nbd.get('title') or proj.get('name', 'docs'), description=proj.get('description', ''),
                repo_url=repo, doc_url=doc.rstrip('/') + '/' if doc else '')


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
                    code = next((l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith('#|')), '')
                    msgs.append('a cell mixes imports with other code, so nbdev-docs runs all of it again while documenting '
                                f'(slow, and it fails if the cell needs earlier unexported cells): {code[:60]!r}')
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
                    code = next((l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith('#|')), '')
                    msgs.append(f'nbdev could not run the cell {code[:60]!r} while documenting ({first[:160]}); '
                                'nbdev-docs would stop here. The page keeps its stored outputs')
                    if saved is not None: cell['outputs'] = saved
                    self.k.exc = None  # the shell goes on with the next cell

        class SiteFilter(FilterDefaults):
            def base_procs(self):
                return [exec_show_docs_tolerant if p is exec_show_docs else p for p in super().base_procs()]

        nb = read_nb(src)
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always')
            SiteFilter()(nb)
        for w in ws:
            m = str(w.message)
            if 'imports and other code' in m:
                body = m.split('---')[1] if '---' in m else ''
                first = next((l for l in body.strip().splitlines() if l.strip() and not l.lstrip().startswith('#|')), '')
                msgs.append(f'a cell mixes imports with other code: nbdev-docs runs all of it again while documenting '
                            f'(keep imports in their own cells): {first[:70]!r}')
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
    (proc / PROC_MARKER).write_text('notebooks processed by tools/build_site.py (only their imports run for mixed cells)\n')
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
        dst = result[src]
        if not ok: result[src] = None
        elif any('could not run' in m or 'import failed' in m for m in msgs): os.utime(dst, (0, 0))  # built with problems: redo it next time
    return result


# ---------------------------------------------------------------- step 2: Quarto syntax -> plain markdown/HTML
_re_fence = re.compile(r'^\s*(```+|~~~+)')
_re_div = re.compile(r'^\s*:{3,}\s*(\{[^}]*\}|[\w-]+)?\s*$')
_re_attr_tok = re.compile(r'''([#.][\w:-]+)|([\w-]+)=("[^"]*"|'[^']*'|[^\s}]+)''')


def _attrs(spec: str) -> tuple[str, list, dict]:
    "Pandoc attributes `{#id .cls key=val}` -> (id, classes, other)."
    ident, classes, kv = '', [], {}
    for m in _re_attr_tok.finditer(spec):
        if m.group(1):
            if m.group(1)[0] == '#': ident = m.group(1)[1:]
            else: classes.append(m.group(1)[1:])
        else: kv[m.group(2)] = m.group(3).strip('"\'')
    return ident, classes, kv


def _attr_html(ident, classes, kv, allowed=('target', 'style', 'title', 'width', 'height', 'alt')) -> str:
    parts = [f'id="{html.escape(ident)}"'] if ident else []
    if classes: parts.append(f'class="{html.escape(" ".join(classes))}"')
    parts += [f'{k}="{html.escape(v)}"' for k, v in kv.items() if k in allowed]
    return (' ' + ' '.join(parts)) if parts else ''


def _inline_quarto(line: str) -> str:
    "Quarto/pandoc inline attribute syntax on one line of markdown -> HTML or plain markdown."
    # ![alt](src){width=50%}
    def img(m):
        ident, classes, kv = _attrs(m.group(3))
        style = '; '.join(f'{k}: {kv.pop(k)}' for k in ('width', 'height') if k in kv and kv[k].endswith('%'))
        if style: kv['style'] = style
        return f'<img src="{html.escape(m.group(2))}" alt="{html.escape(m.group(1))}"{_attr_html(ident, classes, kv)}>'
    line = re.sub(r'!\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}', img, line)
    # [text](url){target="_blank" ...}
    def link(m):
        ident, classes, kv = _attrs(m.group(3))
        return f'<a href="{html.escape(m.group(2))}"{_attr_html(ident, classes, kv)}>{m.group(1)}</a>'
    line = re.sub(r'(?<!!)\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}', link, line)
    # [text]{.class}
    def span(m):
        ident, classes, kv = _attrs(m.group(2))
        return f'<span{_attr_html(ident, classes, kv)}>{m.group(1)}</span>'
    line = re.sub(r'(?<![!\]])\[([^\]]+)\]\{([#.][^}]*)\}', span, line)
    # `code`{.python}
    line = re.sub(r'(`[^`]+`)\{\.[^}]*\}', r'\1', line)
    # shortcodes {{< ... >}}
    line = re.sub(r'\{\{<.*?>\}\}', '', line)
    return line


def quarto_to_markdown(md: str) -> str:
    "Turn Quarto-only markdown (fenced divs, attributes, heading ids, equation labels) into what nbconvert renders."
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
            spec = d.group(1)
            if spec:  # opening ::: {.callout-note} / ::: note
                ident, classes, kv = _attrs(spec) if spec.startswith('{') else ('', [spec], {})
                if any(c.startswith('callout') for c in classes): classes = ['callout'] + classes
                out += ['', f'<div{_attr_html(ident, classes, {})}>', '']
                if kv.get('title'): out += [f'**{kv["title"]}**', '']
            else: out += ['', '</div>', '']
            continue
        h = re.match(r'^(#{1,6}\s+.*?)\s*\{([^}]*)\}\s*$', line)
        if h and re.search(r'[#.]|=', h.group(2)):
            ident = _attrs(h.group(2))[0]
            if ident: out += [f'<div id="{html.escape(ident)}"></div>', '']
            line = h.group(1)
        line = re.sub(r'(\$\$)\s*\{#[\w:-]+\}', r'\1', line)  # $$ ... $$ {#eq-x}
        out.append(_inline_quarto(line))
    return '\n'.join(out)


_re_opt = re.compile(r'^\s*#\|\s?(.*)$')


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


_re_progress = re.compile(r'\d+%\|.*\|.*(it/s|s/it|\?it/s)')


def _is_progress_bar(o) -> bool:
    "A tqdm progress bar (a widget, or its text): noise on a static page."
    data = o.get('data', {})
    text = data.get('text/plain', '') if WIDGET_MIME in data else o.get('text', '') if o.get('name') == 'stderr' else ''
    text = ''.join(text) if isinstance(text, list) else text
    return bool(text) and all(_re_progress.search(l) for l in text.replace('\r', '\n').splitlines() if l.strip())


def prepare_notebook(nb) -> dict:
    "Strip front matter and Quarto options from a processed notebook, in place. Returns the front matter."
    import yaml
    fm, cells = {}, []
    for c in nb.cells:
        src = c.get('source', '')
        if isinstance(src, list): src = ''.join(src)
        c['source'] = src
        if c.cell_type == 'raw':
            m = re.match(r'^---\s*\n(.*?)\n---\s*$', src.strip(), re.S)
            if m and not fm:
                try: fm = yaml.safe_load(m.group(1)) or {}
                except yaml.YAMLError: pass
                continue
            if not src.strip(): continue
            c.cell_type, c['source'] = 'markdown', f'```\n{src}\n```'  # raw cells shown as text, not injected
            c.pop('outputs', None); c.pop('execution_count', None)
        if c.cell_type == 'markdown':
            if not src.strip(): continue
            c['source'] = quarto_to_markdown(src)
        elif c.cell_type == 'code':
            opts, code = split_options(src)
            if _false(opts.get('include', True)): continue
            c['source'] = code
            tags = set(c.metadata.get('tags', []))
            if _false(opts.get('echo', True)) or not code.strip(): tags.add('remove_input')
            if _false(opts.get('output', True)): c['outputs'] = []
            if opts.get('code-fold') and not _false(opts['code-fold']):
                c.metadata['site'] = {'fold': opts.get('code-summary') or 'Code'}
            c.metadata['tags'] = sorted(tags)
            if not code.strip() and not c.get('outputs'): continue
            c['outputs'] = [o for o in c.get('outputs', []) if not _is_progress_bar(o)]
            for o in c.get('outputs', []):
                data = o.get('data', {})
                md = data.get('text/markdown')
                if md is not None:
                    md = quarto_to_markdown(''.join(md) if isinstance(md, list) else md)
                    # show_doc headings name methods like `Trainer.__iter__`: keep the underscores from turning into bold
                    data['text/markdown'] = re.sub(r'^(#{1,6} .*)$', lambda m: m.group(1).replace('__', r'\_\_'), md, flags=re.M)
            cells.append(c)
            cap = opts.get('fig-cap') or opts.get('tbl-cap')
            if cap and c.get('outputs'):
                from nbformat.v4 import new_markdown_cell
                cells.append(new_markdown_cell(f'<p class="figure-caption">{html.escape(cap)}</p>'))
            continue
        cells.append(c)
    for c in cells:  # nbdev leaves working attributes (has_sd, idx_, ...) that nbformat rejects
        for k in [k for k in c if k not in ('cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments')]:
            del c[k]
        c.metadata.pop('execution', None)
    nb.cells = cells
    return fm


# ---------------------------------------------------------------- math: MathJax where it loads, readable text where not
_TEX_SYM = dict(
    alpha='α', beta='β', gamma='γ', Gamma='Γ', delta='δ', Delta='Δ', epsilon='ϵ', varepsilon='ε', zeta='ζ', eta='η',
    theta='θ', Theta='Θ', kappa='κ', lambda_='λ', Lambda='Λ', mu='μ', nu='ν', xi='ξ', pi='π', Pi='Π', rho='ρ',
    sigma='σ', Sigma='Σ', tau='τ', phi='ϕ', varphi='φ', Phi='Φ', chi='χ', psi='ψ', Psi='Ψ', omega='ω', Omega='Ω',
    nabla='∇', partial='∂', infty='∞', sum='∑', prod='∏', int='∫', cdot='·', cdots='⋯', ldots='…', dots='…',
    times='×', div='÷', le='≤', leq='≤', ge='≥', geq='≥', ne='≠', neq='≠', approx='≈', sim='∼', simeq='≃', equiv='≡',
    propto='∝', ll='≪', gg='≫', subset='⊂', subseteq='⊆', cup='∪', cap='∩', setminus='∖', forall='∀', exists='∃',
    to='→', rightarrow='→', leftarrow='←', Rightarrow='⇒', Leftarrow='⇐', leftrightarrow='↔', mapsto='↦', pm='±',
    mp='∓', top='⊤', perp='⊥', lVert='‖', rVert='‖', Vert='‖', lvert='|', rvert='|', vert='|', mid='|', langle='⟨',
    rangle='⟩', lfloor='⌊', rfloor='⌋', lceil='⌈', rceil='⌉', odot='⊙', otimes='⊗', oplus='⊕', circ='∘', star='⋆',
    ell='ℓ', emptyset='∅', neg='¬', land='∧', lor='∨', quad='\u2003', qquad='\u2003\u2003', bmod=' mod ', pmod=' mod ',
    log='log', ln='ln', exp='exp', min='min', max='max', arg='arg', argmin='argmin', argmax='argmax', sin='sin',
    cos='cos', tanh='tanh', det='det', lim='lim', sup='sup', inf='inf', dagger='†', prime='′', colon=':')
_TEX_SYM.update({'lambda': 'λ', 'in': '∈', 'notin': '∉', 'mod': ' mod ', '|': '‖', ',': '\u2009', ';': '\u2002',
                 ':': '\u2005', '!': '', ' ': ' ', '{': '{', '}': '}', '_': '_', '%': '%', '#': '#', '&': '&amp;', '$': '$'})
_TEX_DROP = {'left', 'right', 'big', 'Big', 'bigg', 'Bigg', 'bigl', 'bigr', 'Bigl', 'Bigr', 'biggl', 'biggr',
             'displaystyle', 'textstyle', 'limits', 'nolimits', 'nonumber', 'label'}
_TEX_FONT = {'mathrm', 'text', 'textrm', 'textit', 'textbf', 'operatorname', 'mathbf', 'boldsymbol', 'bm', 'mathit',
             'mathsf', 'mathtt', 'mathcal', 'mathbb', 'mathscr', 'mathfrak', 'mbox'}
_TEX_ACCENT = {'hat': '\u0302', 'widehat': '\u0302', 'bar': '\u0304', 'overline': '\u0305', 'tilde': '\u0303',
               'widetilde': '\u0303', 'vec': '\u20d7', 'dot': '\u0307', 'ddot': '\u0308'}


def _tex_cmd(s, i):
    m = re.match(r'\\([A-Za-z]+|.)', s[i:])
    return (m.group(1), i + len(m.group(0))) if m else ('', i + 1)


def _tex_arg(s, i):
    while i < len(s) and s[i] == ' ': i += 1
    if i >= len(s): return '', i
    if s[i] == '{': return _tex(s, i + 1, '}')
    if s[i] == '\\':
        _, j = _tex_cmd(s, i)
        return _tex(s[i:j])[0], j
    return html.escape(s[i]), i + 1


def _tex(s, i=0, stop=None):
    out = []
    while i < len(s):
        c = s[i]
        if stop and c == stop: return ''.join(out), i + 1
        if c == '\\':
            name, i = _tex_cmd(s, i)
            if name in ('frac', 'dfrac', 'tfrac'):
                a, i = _tex_arg(s, i); b, i = _tex_arg(s, i)
                wrap = lambda x: x if len(re.sub(r'<[^>]+>', '', x)) <= 1 or re.fullmatch(r'[\w.]+', re.sub(r'<[^>]+>', '', x)) else f'({x})'
                out.append(f'{wrap(a)}/{wrap(b)}')
            elif name in _TEX_FONT: a, i = _tex_arg(s, i); out.append(a)
            elif name in _TEX_ACCENT: a, i = _tex_arg(s, i); out.append(a + _TEX_ACCENT[name])
            elif name == 'sqrt': a, i = _tex_arg(s, i); out.append(f'√({a})')
            elif name in _TEX_DROP:
                if name in ('label',): _, i = _tex_arg(s, i)
                elif i < len(s) and s[i] == '.': i += 1  # \left.
            elif name == 'begin':
                env, i = _tex_arg(s, i)
                out.append('(' if env.startswith('pmatrix') else '[' if 'matrix' in env else '')
            elif name == 'end':
                env, i = _tex_arg(s, i)
                out.append(')' if env.startswith('pmatrix') else ']' if 'matrix' in env else '')
            elif name == '\\': out.append('; ')
            else: out.append(_TEX_SYM.get(name, name))
        elif c in '_^':
            a, i = _tex_arg(s, i + 1)
            out.append(f'<sub>{a}</sub>' if c == '_' else f'<sup>{a}</sup>')
        elif c == '{': a, i = _tex(s, i + 1, '}'); out.append(a)
        elif c == '}': i += 1
        elif c == '&': out.append(', '); i += 1
        elif c == '~': out.append(' '); i += 1
        elif c == "'": out.append('′'); i += 1
        elif c == '-': out.append('−'); i += 1
        else: out.append(html.escape(c)); i += 1
    return ''.join(out), i


def tex_to_html(tex: str) -> str:
    "A readable HTML approximation of TeX math (Greek letters, symbols, sub/superscripts), for pages read without MathJax."
    try: return _tex(tex.strip())[0]
    except Exception: return html.escape(tex)


def _math_html(body: str, display: bool) -> str:
    cls = 'math display' if display else 'math inline'
    return f'<span class="{cls}" data-tex="{html.escape(body, quote=True)}">{tex_to_html(body)}</span>'


def _patch_math():
    "nbconvert's markdown renderer writes math as spans that carry the TeX (for MathJax) and show a readable fallback."
    from nbconvert.filters import markdown_mistune as mm
    R = mm.IPythonRenderer
    if getattr(R, '_site_math', False): return
    R.inline_math = lambda self, body: _math_html(body, False)
    R.block_math = lambda self, body: _math_html(body, True)
    R.latex_environment = lambda self, name, body: _math_html(f'\\begin{{{name}}}{body}\\end{{{name}}}', True)
    R._site_math = True


# ---------------------------------------------------------------- step 3: HTML
def _exporter():
    _patch_math()
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.TagRemovePreprocessor.remove_cell_tags = {'remove_cell'}
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    return HTMLExporter(config=c, template_name='bioss', extra_template_basedirs=[str(TEMPLATES)])


def _md_inline(text: str) -> str:
    "A one-line description (markdown) as inline HTML."
    from nbconvert.filters import markdown2html
    h = markdown2html(quarto_to_markdown(str(text))).strip()
    return re.sub(r'^<p>(.*)</p>$', r'\1', h, flags=re.S)


def fix_links(body: str, doc_url: str, link_map: dict) -> str:
    "Hosted-docs links and notebook links -> pages of this site; heading ids lower-cased as Quarto writes them."
    if doc_url:
        body = re.sub(r'href="' + re.escape(doc_url) + r'([^"]*)"', lambda m: f'href="{m.group(1) or "index.html"}"', body)
    def nb_link(m):
        target, frag = m.group(1), m.group(2) or ''
        name = Path(target).name
        return f'href="{link_map.get(name, page_name(name))}{frag.lower()}"' if not re.match(r'\w+://', target) else m.group(0)
    body = re.sub(r'href="([^"#]+\.ipynb)(#[^"]*)?"', nb_link, body)
    body = re.sub(r'(<h[1-6][^>]*\sid=")([^"]+)(")', lambda m: m.group(1) + m.group(2).lower() + m.group(3), body)
    body = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{m.group(1).lower()}"', body)
    return body


def table_of_contents(body: str) -> list[tuple[int, str, str]]:
    "(level, id, text) of the h2/h3 headings of a page."
    toc = []
    for m in re.finditer(r'<h([23])[^>]*\sid="([^"]+)"[^>]*>(.*?)</h\1>', body, re.S):
        text = re.sub(r'<a class="anchor-link".*?</a>', '', m.group(3), flags=re.S)
        text = html.unescape(re.sub(r'<[^>]+>', '', text)).strip()
        if text: toc.append((int(m.group(1)), m.group(2), text))
    return toc


_STRAY = [(re.compile(r'#\|'), '`#|` option line'), (re.compile(r'^\s*:::', re.M), '`:::` fenced div'),
          (re.compile(r'\{[#.][A-Za-z][\w-]*[^}]*\}'), '`{#id .class}` attribute'),
          (re.compile(r'\{(?:target|style|width)='), '`{key=value}` attribute')]


def visible_text(page_html: str, skip_code: bool = True) -> str:
    "The text a reader sees on the page, without scripts and styles and, with `skip_code`, without `<code>` (prose code)."
    from html.parser import HTMLParser
    class P(HTMLParser):
        def __init__(self):
            super().__init__(); self.out, self.skip = [], 0
        def handle_starttag(self, tag, attrs):
            if tag in ('script', 'style', 'head') or (skip_code and tag == 'code'): self.skip += 1
        def handle_endtag(self, tag):
            if (tag in ('script', 'style', 'head') or (skip_code and tag == 'code')) and self.skip: self.skip -= 1
        def handle_data(self, data):
            if not self.skip: self.out.append(data)
    p = P(); p.feed(page_html)
    return ''.join(p.out)


def stray_markup(page_html: str) -> list[str]:
    "Quarto/nbdev syntax a reader would see as text on the page (outside inline code)."
    text = visible_text(page_html)
    return [what for rx, what in _STRAY if rx.search(text)]


def broken_links(out: Path) -> list[tuple[str, str]]:
    "(page, href) of links between pages of the site in `out` whose page or `#anchor` does not exist."
    ids, links = {}, {}
    for f in out.rglob('*.html'):
        rel = str(f.relative_to(out))
        text = f.read_text()
        ids[rel] = {html.unescape(i) for i in re.findall(r'\sid="([^"]+)"', text)}
        links[rel] = [html.unescape(h) for h in re.findall(r'<a\s[^>]*href="([^"]+)"', text)]
    bad = []
    for rel, hrefs in links.items():
        for h in hrefs:
            if re.match(r'^(\w+:|//)', h): continue
            target, _, frag = h.partition('#')
            page = str((Path(rel).parent / target)) if target else rel
            page = os.path.normpath(page)
            if page not in ids: bad.append((rel, h))
            elif frag and frag not in ids[page]: bad.append((rel, h))
    return bad


def _write_assets(out: Path, exporter, pygments_css):
    libs = out / 'site_libs'
    libs.mkdir(parents=True, exist_ok=True)
    css = []
    for base in exporter.template_paths:  # JupyterLab's own stylesheet, from nbconvert's lab template
        f = Path(base) / 'static' / 'index.css'
        if f.exists() and (Path(base) / 'static' / 'theme-light.css').exists():
            css = [f.read_text(), (Path(base) / 'static' / 'theme-light.css').read_text()]; break
    (libs / 'notebook.css').write_text('\n'.join(css))
    if not pygments_css:
        from pygments.formatters import HtmlFormatter
        pygments_css = [HtmlFormatter().get_style_defs('.highlight')]
    (libs / 'pygments.css').write_text('\n'.join(pygments_css))
    (libs / 'site.css').write_text((TEMPLATES / 'site.css').read_text())
    st = NBS / 'styles.css'
    (libs / 'styles.css').write_text(st.read_text() if st.exists() else '')


def _copy_assets(out: Path):
    "Images and other files the notebooks link to, at the same relative paths."
    for p in NBS.rglob('*'):
        rel = p.relative_to(NBS)
        if p.is_file() and p.suffix.lower() in ASSET_EXTS and not any(s.startswith(('_', '.')) for s in rel.parts):
            (out / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, out / rel)


def _prepare_out(out: Path):
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists() and out.resolve() != (ROOT / '_docs').resolve():
            sys.exit(f'--out {out} is not empty and was not written by this script: choose an empty or new folder')
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text('written by tools/build_site.py\n')


def render_notebook(exporter, src: Path, dst) -> tuple[dict, str, dict]:
    "The page of one notebook: ({href, title, description}, body HTML, nbconvert resources)."
    import nbformat
    rel = str(src.relative_to(NBS))
    nb = nbformat.read(str(dst if dst and Path(dst).exists() else src), as_version=4)
    if not dst:  # unprocessed fallback: hide nbdev plumbing the way the processors would
        nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and re.search(
            r'^\s*#\|\s*(hide|export|exporti|default_exp)\b', ''.join(c.source), re.M))]
    fm = prepare_notebook(nb)
    title, desc = fm.get('title'), fm.get('description')
    if not title:  # no front matter: the first `# Title` cell gives it
        for c in nb.cells:
            m = c.cell_type == 'markdown' and re.match(r'^#\s+(.+)\n?(?:\s*>\s*(.+))?', c.source.strip())
            if m:
                title, desc = m.group(1).strip(), (m.group(2) or '').strip() or desc
                c.source = '\n'.join(l for l in c.source.strip().split('\n')[1:] if not l.lstrip().startswith('>'))
                break
    title = str(title or Path(rel).stem)
    body, resources = exporter.from_notebook_node(nb, resources={'metadata': {'name': title, 'path': str(src.parent)}})
    href = fm.get('output-file') or page_name(rel)
    return dict(href=href, title=title, description=str(desc or '')), body, resources


def build_nbconvert(out: Path, proc: Path, workers: int = 2, force: bool = False) -> dict:
    "Build the site without Quarto. Returns {page href: title} for the pages written."
    import jinja2, nbformat
    t0 = time.time()
    cfg = project_config()
    tree = read_sidebar()
    files = site_notebooks()
    names = {str(p.relative_to(NBS)) for p in files}
    for f in flatten(tree):
        if f not in names: warn(f'nbs/sidebar.yml lists {f}, which does not exist yet: left out of the site')
    listed = set(flatten(tree))
    for f in sorted(names - listed):
        warn(f'nbs/{f} is not in nbs/sidebar.yml: its page is built but the sidebar does not link it')
    processed = process_notebooks(files, proc, workers=workers, force=force)
    t1 = time.time()

    exporter = _exporter()
    pages, bodies, css = {}, {}, None
    for src in files:
        rel = str(src.relative_to(NBS))
        try: page, body, resources = render_notebook(exporter, src, processed.get(str(src)))
        except Exception as e:  # a notebook being saved right now, say: the others still get their pages
            warn(f'nbs/{rel}: could not be rendered ({type(e).__name__}: {str(e)[:200]}): left out of the site')
            continue
        pages[rel], bodies[rel] = page, body
        css = css or resources.get('inlining', {}).get('css')

    link_map = {Path(r).name: p['href'] for r, p in pages.items()}
    def side(items):
        res = []
        for it in items:
            if isinstance(it, dict):
                sub = side(it['contents'])
                if sub: res.append({'section': it['section'], 'contents': sub})
            elif it in pages: res.append({'href': pages[it]['href'], 'title': pages[it]['title']})
        return res
    sidebar = side(tree)
    order = [f for f in flatten(tree) if f in pages]

    _prepare_out(out)
    _write_assets(out, exporter, css)
    _copy_assets(out)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False)
    tmpl = env.get_template('page.html.j2')
    site = dict(cfg, mathjax_url=MATHJAX_URL)
    for rel, page in pages.items():
        body = fix_links(bodies[rel], cfg['doc_url'], link_map)
        i = order.index(rel) if rel in order else None
        prev = pages[order[i - 1]] if i else None
        nxt = pages[order[i + 1]] if i is not None and i + 1 < len(order) else None
        text = tmpl.render(site=site, page=dict(page, description_html=_md_inline(page['description']) if page['description'] else ''),
                           body=body, sidebar=sidebar, prev=prev, next=nxt, toc=table_of_contents(body))
        for what in stray_markup(text): warn(f'nbs/{rel}: {what} visible on {page["href"]}')
        (out / page['href']).parent.mkdir(parents=True, exist_ok=True)
        (out / page['href']).write_text(text)
    unwritten = {page_name(f) for f in flatten(tree) if f not in names}  # already warned about
    for rel, h in broken_links(out):
        if h.partition('#')[0] not in unwritten: warn(f'{rel}: the link {h} leads nowhere')
    log(f'wrote {len(pages)} page(s) to {out} in {time.time() - t0:.1f}s ({time.time() - t1:.1f}s for HTML): ' + ', '.join(pages[r]['href'] for r in order))
    return {p['href']: p['title'] for p in pages.values()}


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
                    help='where processed notebooks go (default: _proc/; a temporary folder when --out is given)')
    ap.add_argument('--builder', choices=('auto', 'quarto', 'nbconvert'), default='auto',
                    help='auto: nbdev-docs where quarto is installed, else nbconvert')
    ap.add_argument('--no-readme', action='store_true', help='do not regenerate README.md')
    ap.add_argument('--force', action='store_true', help='reprocess every notebook')
    ap.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1), help='processes for the nbdev step (default: 2)')
    ap.add_argument('--nbs', type=Path, default=NBS, help='the notebooks folder, with its sidebar.yml (default: nbs/)')
    a = ap.parse_args(argv)
    out = a.out.resolve()
    NBS = a.nbs.resolve()
    use_quarto = a.builder == 'quarto' or (a.builder == 'auto' and shutil.which('quarto'))
    if use_quarto: build_quarto(out)
    else:
        if a.proc: build_nbconvert(out, a.proc.resolve(), a.workers, a.force)
        elif out == (ROOT / '_docs').resolve(): build_nbconvert(out, ROOT / '_proc', a.workers, a.force)
        else:
            with tempfile.TemporaryDirectory(prefix='bioss_proc_') as d: build_nbconvert(out, Path(d), a.workers, True)
    if not a.no_readme: subprocess.run([sys.executable, str(HERE / 'make_readme.py')], cwd=ROOT, check=True)


if __name__ == '__main__':
    main()
