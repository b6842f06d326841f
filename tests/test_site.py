"""The course site (`make docs` without Quarto: Sphinx + myst-nb + Furo), built offline into a temporary folder.

Every chapter of nbs/sidebar.yml gets a page with its title, its plots, the sidebar in course order with the parts as
captions and previous/next links; no nbdev/Quarto syntax shows on a page; links between pages resolve; nothing loads
from a CDN; the search index finds "feedback alignment"; no widget shows as its text repr. Where headless Chromium is
installed, the search page is run in it (results with excerpts), no code block scrolls sideways, and chapters are
photographed in light and dark mode (set BIOSS_SITE_SHOTS=DIR to keep the pictures)."""
import copy, functools, json, os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
sys.path.insert(0, str(ROOT / 'tools'))
import build_site  # noqa: E402

try: import bs4  # comes with Furo
except ImportError as e: raise ImportError('the site needs the docs extra (Sphinx, myst-nb, Furo): pip install -e ".[docs]"') from e
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')


def _build(out, *extra):
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'build_site.py'), '--out', str(out), '--builder', 'sphinx',
                        '--no-readme', *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp('site')
    out = base / '_docs'
    state = lambda: [(f, (NBS / f).stat().st_mtime) for f in chapters()]
    for _ in range(2):  # a chapter written while the site was being built: build once more
        before, t0 = state(), time.time()
        r = _build(out, '--proc', str(base / '_proc'))
        if state() == before: break
    print(f'site built in {time.time() - t0:.1f}s')
    return out, r


def chapters() -> list[str]:
    "Notebooks of the sidebar that exist, in course order."
    return [f for f in build_site.flatten(build_site.read_sidebar(NBS / 'sidebar.yml')) if (NBS / f).exists()]


def nb(f): return json.loads((NBS / f).read_text())


def nb_title(f) -> str:
    for c in nb(f)['cells']:
        m = c['cell_type'] == 'markdown' and re.match(r'#\s+(.+)', ''.join(c['source']).strip())
        if m: return m.group(1).strip()


@functools.lru_cache(maxsize=None)
def _parse(path: Path, mtime: float): return bs4.BeautifulSoup(path.read_text(), 'html.parser')


def soup(path: Path):
    "The parsed page (parsed once per build; do not modify it)."
    return _parse(path, path.stat().st_mtime)


def page(out, f):
    p = out / build_site.page_name(f)
    assert p.exists(), f'{f}: no page {p.name} in the site'
    return soup(p)


def h1(s) -> str:
    "The page's title, without the heading's link symbol."
    h = copy.copy(s.find('h1'))
    for a in h.find_all('a', class_='headerlink'): a.decompose()
    return h.get_text(' ', strip=True)


def visible_text(s) -> str:
    "What a reader sees as text: no scripts, styles, code, or TeX that MathJax typesets."
    s = bs4.BeautifulSoup(str(s), 'html.parser')
    for t in s.find_all(['script', 'style', 'head', 'code', 'pre']): t.decompose()
    for t in s.find_all(class_='math'): t.decompose()
    return s.get_text(' ')


def test_every_chapter_has_a_page_with_its_title(site):
    out, _ = site
    assert chapters() and chapters()[0] == 'index.ipynb'
    for f in chapters():
        assert h1(page(out, f)) == nb_title(f), f


def test_stored_plots_are_on_the_page(site):
    "Chapters whose notebook stores an image output show images, and every <img> of the site loads a file of the site."
    out, _ = site
    for f in chapters():
        imgs = [i.get('src', '') for i in page(out, f).find_all('img')]
        for src in imgs:
            assert not re.match(r'^(\w+:)?//', src) and (out / src).is_file(), f'{f}: image {src} is not in the site'
        if any(k.startswith('image/') for c in nb(f)['cells'] for o in c.get('outputs', []) for k in o.get('data', {})):
            assert any(s.startswith('_images/') for s in imgs), f'{f}: stored plots but no image on the page'


def exported_names(f) -> set[str]:
    "Public functions and classes defined in the `#| export`/`#| exports` cells of a notebook."
    names = set()
    for c in nb(f)['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and re.match(r'\s*#\|\s*exports?\b', src):
            names |= set(re.findall(r'^(?:def|class)\s+([A-Za-z]\w*)', src, re.M))
    return names


def test_exported_names_are_documented(site):
    "nbdev's `show_doc` output is on the page: an exported name has its heading, with the anchor nbdev's links use."
    out, _ = site
    for f in chapters():
        names = {n.lower() for n in exported_names(f)}
        if not names: continue
        s = page(out, f)
        ids = {t['id'] for t in s.find_all(id=True)}
        documented = names & ids
        assert documented, f'{f}: none of {sorted(names)[:5]} has a show_doc anchor'
        assert s.find_all('hr', class_='show-doc'), f'{f}: no show_doc block'


STRAY = re.compile(r'#\||^\s*:::|\{[#.][A-Za-z][\w-]*[^}]*\}|\{(?:target|style|width)=|\{\{<|'
                   r'\{(?:toctree|note|tip|warning|admonition|container)\}|'
                   r'\[[^\]\n]+\]\((?:https?://|[\w./-]+\.(?:ipynb|html))', re.M)


def test_no_directive_or_quarto_text_on_the_pages(site):
    """On every page: no `#|` option lines, `:::` fences, `{target=...}`/`{#id .class}` attributes or unrendered links
    visible as text, and no `#|` line left at the top of a code cell."""
    out, _ = site
    pages = [p for p in out.glob('*.html') if p.name not in ('search.html', 'genindex.html')]
    assert {build_site.page_name(f) for f in chapters()} <= {p.name for p in pages}
    for p in pages:
        s = soup(p)
        hits = [m.group(0) for m in STRAY.finditer(visible_text(s.find('article')))]
        assert not hits, f'{p.name}: {hits[:5]}'
        options = [c.get_text()[:60] for c in s.select('div.cell_input') if re.match(r'\s*#\|', c.get_text())]
        assert not options, f'{p.name}: {options[:3]}'


def test_sidebar_in_course_order(site):
    "Every page: the chapters in sidebar.yml's order under its parts, the page marked; prev/next follow that order."
    out, _ = site
    order = [build_site.page_name(f) for f in chapters()]
    tree = build_site.read_sidebar(NBS / 'sidebar.yml')
    sections = [it['section'] for it in tree if isinstance(it, dict)
                and any((NBS / f).exists() and f != 'index.ipynb' for f in build_site.flatten([it]))]
    for i, f in enumerate(chapters()):
        s = page(out, f)
        side = s.find(class_='sidebar-tree')
        links = [a['href'] for a in side.find_all('a', class_='reference')]
        assert [order[i] if h == '#' else h for h in links] == order[1:], f  # the home page heads the sidebar
        assert [c.get_text(strip=True) for c in side.find_all(class_='caption-text')] == sections, f
        current = side.find_all('li', class_='current-page')
        assert (not current) if i == 0 else [li.a['href'] for li in current] == ['#'], f
        prev, nxt = s.find('a', class_='prev-page'), s.find('a', class_='next-page')
        assert (prev['href'] if prev else None) == (order[i - 1] if i else None), f
        assert (nxt['href'] if nxt else None) == (order[i + 1] if i + 1 < len(order) else None), f


def broken_links(out: Path) -> list[tuple[str, str]]:
    "(page, href) of links inside the site whose file or `#anchor` does not exist."
    ids, links = {}, {}
    for f in out.rglob('*.html'):
        rel = str(f.relative_to(out))
        s = soup(f)
        ids[rel] = {t['id'] for t in s.find_all(id=True)}
        links[rel] = [a['href'] for a in s.find_all('a', href=True)]
    bad = []
    for rel, hrefs in links.items():
        for h in hrefs:
            if re.match(r'^(\w+:|//)', h): continue
            target, _, frag = h.partition('#')
            target = target.partition('?')[0]
            path = os.path.normpath(str(Path(rel).parent / target)) if target else rel
            if not (out / path).exists(): bad.append((rel, h))
            elif frag and path.endswith('.html') and frag not in ids.get(path, set()): bad.append((rel, h))
    return bad


def test_links_between_pages_resolve(site):
    "Every link inside the site reaches an existing file and, with `#anchor`, that anchor; nbdev's links are local."
    out, _ = site
    bad = broken_links(out)
    assert not bad, bad[:10]
    doc_url = build_site.project_config()['doc_url']
    for f in chapters():
        hosted = [a['href'] for a in page(out, f).find_all('a', href=True) if doc_url and a['href'].startswith(doc_url)]
        assert not hosted, f'{f}: links to the hosted docs instead of this site: {hosted[:3]}'


def test_nothing_loads_from_a_cdn(site):
    "Every <script src> and <link href> of every page is a file of the site; MathJax is among them."
    out, _ = site
    for f in out.rglob('*.html'):
        s = soup(f)
        urls = [t['src'] for t in s.find_all('script', src=True)] + [t['href'] for t in s.find_all('link', href=True)
                                                                     if set(t.get('rel', [])) & {'stylesheet', 'preload', 'modulepreload', 'icon'}]
        remote = [u for u in urls if re.match(r'^(\w+:)?//', u)]
        assert not remote, f'{f.name}: {remote}'
        for u in urls: assert (f.parent / u.partition('?')[0]).is_file(), f'{f.name}: {u} is not in the site'
    mj = out / '_static' / 'mathjax'
    assert (mj / 'tex-chtml.js').is_file() and any((mj / 'output' / 'chtml' / 'fonts' / 'woff-v2').glob('*.woff'))
    prose = lambda c: re.sub(r'`[^`]*`', '', ''.join(c['source']))          # `$BIOSS_DATA` in code is not math
    math_pages = [f for f in chapters() if any(c['cell_type'] == 'markdown' and '$' in prose(c) for c in nb(f)['cells'])]
    for f in math_pages:
        s = page(out, f)
        assert s.find(class_='math'), f'{f}: math in the notebook, none on the page'
        assert s.find('script', src=re.compile(r'_static/mathjax/tex-chtml\.js')), f


def search_index(out) -> dict:
    text = (out / 'searchindex.js').read_text()
    return json.loads(text[text.index('(') + 1:text.rindex(')')])


def test_search_index_finds_feedback_alignment(site):
    "Sphinx's index holds the (stemmed) terms, and the pages with both words are the pages whose notebook says them."
    out, _ = site
    idx = search_index(out)
    def pages_of(term):  # a word in a page's text or in one of its headings
        found = set()
        for kind in ('terms', 'titleterms'):
            d = idx[kind].get(term, [])
            found |= {idx['docnames'][i] for i in ([d] if isinstance(d, int) else d)}
        return found
    both = pages_of('feedback') & pages_of('align')
    said = {build_site.page_name(f)[:-5] for f in chapters()
            if re.search(r'feedback alignment', json.dumps(nb(f)['cells']), re.I)}
    assert said and said <= both, (said, both)


def _chromium(tmp, *args, timeout=90):
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--hide-scrollbars',
           '--disable-background-networking', '--disable-component-update', '--disable-sync', '--virtual-time-budget=10000',
           f'--user-data-dir={tmp}', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)



OVERFLOW_JS = r'''
window.addEventListener('load', () => setTimeout(() => {
  document.querySelectorAll('article details').forEach(d => d.open = true);  // folded code counts too
  const probe = document.createElement('span');
  probe.style.cssText = 'position:absolute;visibility:hidden;white-space:pre;left:0;top:0';
  document.body.appendChild(probe);
  const res = {lines: 0, wide: 0, overflowing: 0, pres: 0, scrolling: 0, page_scrolls: false, examples: []};
  for (const pre of document.querySelectorAll('article pre')) {
    if (!pre.clientWidth) continue;
    const cs = getComputedStyle(pre);
    const avail = pre.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    probe.style.font = cs.font; probe.style.letterSpacing = cs.letterSpacing; probe.style.tabSize = cs.tabSize;
    const scrolls = pre.scrollWidth > pre.clientWidth + 1;
    res.pres++; if (scrolls) res.scrolling++;
    for (const line of pre.textContent.replace(/\n$/, '').split('\n')) {
      res.lines++;
      probe.textContent = line;
      if (probe.getBoundingClientRect().width > avail + 1) {  // wider than the column: it wraps, or it scrolls
        res.wide++;
        if (scrolls) { res.overflowing++; if (res.examples.length < 5) res.examples.push(line.slice(0, 100)); }
      }
    }
  }
  res.page_scrolls = document.documentElement.scrollWidth > window.innerWidth + 1;
  const out = document.createElement('pre'); out.id = 'bioss-overflow'; out.textContent = JSON.stringify(res);
  document.body.appendChild(out);
}, 300));
'''


def code_overflow(out: Path, name: str, tmp: Path, width: int = 1280) -> dict:
    """How the code of page `name` fits its column in headless Chromium at `width` px: lines (of every <pre> in the
    article, folded code unfolded), wide (lines wider than their block's text width), overflowing (wide lines in a
    block that scrolls sideways instead of wrapping), pres, scrolling (blocks that scroll sideways), page_scrolls."""
    src = out / name
    probe = src.with_name(f'_overflow_{name}')  # beside the page, so that its styles and scripts load
    probe.write_text(src.read_text().replace('</body>', f'<script>{OVERFLOW_JS}</script></body>'))
    try:
        r = _chromium(tmp / f'profile_overflow_{name}', f'--window-size={width},1000', '--dump-dom', probe.as_uri())
    finally:
        probe.unlink()
    found = bs4.BeautifulSoup(r.stdout, 'html.parser').find(id='bioss-overflow')
    assert found is not None, f'{name}: the measuring script did not run: {r.stderr[-1000:]}'
    return json.loads(found.get_text())

@pytest.mark.skipif(not CHROMIUM, reason='chromium is not installed: no browser check of the site (apt-get install chromium)')
def test_search_page_finds_course_pages(site, tmp_path):
    """search.html?q=feedback+alignment, run in headless Chromium from the files alone, lists course pages, each with an
    excerpt of its text that holds the words; no "show source" link."""
    out, _ = site
    r = _chromium(tmp_path / 'profile', '--dump-dom', (out / 'search.html').as_uri() + '?q=feedback+alignment')
    items = bs4.BeautifulSoup(r.stdout, 'html.parser').select('ul.search li')
    hrefs = {li.a['href'].partition('?')[0].partition('#')[0] for li in items}
    assert hrefs & {build_site.page_name(f) for f in chapters()}, r.stdout[-2000:] + r.stderr[-2000:]
    # under each result, an excerpt of its page around the words (Sphinx fetches the page; from files, its text script)
    excerpts = [li.find('p', class_='context') for li in items]
    assert all(excerpts), [li.get_text(' ', strip=True)[:80] for li, e in zip(items, excerpts) if not e]
    assert all(re.search(r'feedback|align', e.get_text(), re.I) for e in excerpts), [e.get_text()[:200] for e in excerpts]
    assert not any(a.get_text(strip=True).lower() == 'show source' for a in bs4.BeautifulSoup(r.stdout, 'html.parser').find_all('a'))


@pytest.mark.skipif(not CHROMIUM, reason='chromium is not installed: no layout check of the site (apt-get install chromium)')
def test_code_does_not_overflow(site, tmp_path):
    """No code block of a chapter (code cells, outputs, show_doc signatures, folded code unfolded) scrolls sideways in
    headless Chromium at 1280 px (and no page does), nor on a phone (500 px, Chromium's narrowest window) for the
    chapter with the most long lines: long lines wrap in their block."""
    out, _ = site
    res = {f: code_overflow(out, build_site.page_name(f), tmp_path) for f in chapters()}
    for f, r in res.items():
        assert r['lines'] or not any(c['cell_type'] == 'code' for c in nb(f)['cells']), f'{f}: no code measured'
        assert r['overflowing'] == 0 and r['scrolling'] == 0, f'{f}: {r}'
        assert not r['page_scrolls'], f'{f}: the page scrolls sideways'
    assert sum(r['wide'] for r in res.values()), 'no line needs wrapping at all: the measurement measures nothing'
    f = max(res, key=lambda f: res[f]['wide'])
    r = code_overflow(out, build_site.page_name(f), tmp_path, width=500)
    assert r['wide'] > res[f]['wide'] and r['overflowing'] == 0 and r['scrolling'] == 0, f'{f} at 500 px: {r}'


WIDGET_REPR = re.compile(r'\b(?:interactive|VBox|HBox|Output|FloatSlider|IntSlider|Dropdown)\(children=|\binteractive\(')


def test_no_widget_repr_on_the_pages(site):
    """A chapter's explorer (a live widget) stores only its repr as text, `interactive(children=(FloatSlider(...`:
    no page shows it; the chapters whose notebooks store one still show their plots."""
    out, _ = site
    with_widgets = [f for f in chapters() if any(build_site.WIDGET_MIME in o.get('data', {})
                                                 for c in nb(f)['cells'] for o in c.get('outputs', []))]
    for p in out.glob('*.html'):
        for o in soup(p).select('article div.cell_output'):
            assert not WIDGET_REPR.search(o.get_text()), f'{p.name}: {o.get_text()[:120]}'
    for f in with_widgets:
        assert page(out, f).select('div.cell_output img'), f'{f}: no plot beside its explorer'


def test_widget_outputs_are_dropped():
    "In a page source: a widget's output goes (its repr with it), a progress bar goes; other outputs stay."
    wid = {'output_type': 'display_data', 'metadata': {}, 'data': {
        build_site.WIDGET_MIME: {'model_id': 'x', 'version_major': 2, 'version_minor': 0},
        'text/plain': ["interactive(children=(FloatSlider(value=2.0, description='tau'),))"]}}
    bar = {'output_type': 'display_data', 'metadata': {}, 'data': {
        build_site.WIDGET_MIME: {'model_id': 'y'}, 'text/plain': ['e2e/bp:   0%|          | 0/200 [00:00<?, ?it/s]']}}
    pic = {'output_type': 'display_data', 'metadata': {}, 'data': {build_site.WIDGET_MIME: {'model_id': 'z'},
                                                                   'text/plain': ['Output()'], 'image/png': 'iVBOR'}}
    txt = {'output_type': 'stream', 'name': 'stdout', 'text': ['kept\n']}
    nb_ = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# T'},
                     {'cell_type': 'code', 'metadata': {}, 'source': 'explore()', 'outputs': [wid, bar, pic, txt]}],
           'metadata': {'widgets': {}}, 'nbformat': 4, 'nbformat_minor': 5}
    page_nb, _ = build_site.to_page(copy.deepcopy(nb_), {}, 'x')
    outs = page_nb['cells'][1]['outputs']
    assert [o.get('data', o.get('text')) for o in outs] == [{'image/png': 'iVBOR'}, ['kept\n']]
    assert 'widgets' not in page_nb['metadata']


def _has_image(f): return any(k.startswith('image/') for c in nb(f)['cells'] for o in c.get('outputs', []) for k in o.get('data', {}))
def _math_cells(f): return sum(c['cell_type'] == 'markdown' and '$' in ''.join(c['source']) for c in nb(f)['cells'])


def _chars_before_first_plot(out, f):
    "How much text a reader scrolls past before the page's first plot."
    html = str(page(out, f).find('article'))
    return len(bs4.BeautifulSoup(html[:html.find('src="_images/')], 'html.parser').get_text())


@pytest.mark.skipif(not CHROMIUM, reason='chromium is not installed: no screenshots of the site (apt-get install chromium)')
def test_screenshots_light_and_dark(site, tmp_path):
    """In light and dark mode: the top of the chapter with the most math (1280x1600), and the chapter whose first plot
    comes earliest, tall enough to show it (1280x4000). Pictures that are not blank; light and dark where they should be."""
    import matplotlib.image as mpimg
    out, _ = site
    with_plots = [f for f in chapters()[1:] if _has_image(f)]
    if not with_plots: pytest.skip('no chapter stores a plot')
    shots = [('math', max(with_plots, key=_math_cells), 1600),
             ('plot', min(with_plots, key=lambda f: _chars_before_first_plot(out, f)), 4000)]
    keep = Path(os.environ['BIOSS_SITE_SHOTS']) if os.environ.get('BIOSS_SITE_SHOTS') else None
    for mode, flags in (('light', []), ('dark', ['--force-dark-mode'])):
        for what, f, height in shots:
            png = tmp_path / f'{Path(f).stem}_{what}_{mode}.png'
            url = (out / build_site.page_name(f)).as_uri()
            _chromium(tmp_path / f'profile_{mode}_{what}', *flags, f'--screenshot={png}', f'--window-size=1280,{height}', url)
            assert png.exists(), f'chromium wrote no screenshot of {url} in {mode} mode'
            img = mpimg.imread(png)[..., :3]
            assert img.shape[:2] == (height, 1280), img.shape
            assert img.std() > 0.05, f'{f}, {mode}: the screenshot is (nearly) one colour'
            top = img[:1200].mean()  # title, text and sidebar: dark on light, or light on dark
            assert (top > 0.7) if mode == 'light' else (top < 0.3), (f, mode, top)
            if keep: keep.mkdir(parents=True, exist_ok=True); shutil.copy(png, keep / png.name)


def test_new_and_missing_chapters(tmp_path):
    """A chapter added to the sidebar (03a_extra.ipynb) gets its page, with its callout, math and hidden code handled;
    a sidebar entry whose notebook is not written yet is left out, with a warning; the build still succeeds."""
    import nbformat
    from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell, new_output
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    shutil.copy(NBS / 'index.ipynb', nbs / 'index.ipynb')
    extra = new_notebook(cells=[
        new_markdown_cell('# An extra chapter\n> Added after the others.'),
        new_markdown_cell('::: {.callout-tip title="Remember"}\nThe error is $\\tau - d_{ij}$; see [the losses](03_losses.ipynb)'
                          '{target="_blank"}.\n:::'),
        new_code_cell('#| echo: false\nprint("hidden source")',
                      outputs=[new_output('stream', name='stdout', text='only the output shows\n')]),
        new_code_cell('#| hide\nsecret = 1'),
    ], metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})
    nbformat.write(extra, nbs / '03a_extra.ipynb')
    (nbs / 'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n'
                                     '      - section: "Later"\n        contents:\n          - 03a_extra.ipynb\n'
                                     '          - 42_not_written.ipynb\n')
    r = _build(tmp_path / 'site', '--nbs', str(nbs), '--proc', str(tmp_path / 'proc'))
    assert '42_not_written.ipynb' in r.stderr and 'does not exist' in r.stderr
    assert not (tmp_path / 'jupyter_execute').exists()  # myst-nb's files stay in the build folder
    s = soup(tmp_path / 'site' / 'extra.html')
    assert h1(s) == 'An extra chapter' and 'Added after the others.' in s.find('p', class_='description').get_text()
    tip = s.find(class_='admonition')
    assert tip and 'tip' in tip['class'] and 'Remember' in tip.get_text() and tip.find(class_='math')
    text = s.find('article').get_text()
    assert 'only the output shows' in text and 'hidden source' not in text and 'secret' not in text
    assert not STRAY.findall(visible_text(s.find('article')))
    assert s.find('a', class_='prev-page')['href'] == 'index.html' and s.find('a', class_='next-page') is None
    home = soup(tmp_path / 'site' / 'index.html')
    assert [c.get_text(strip=True) for c in home.find_all(class_='caption-text')] == ['Later']
    assert [a['href'] for a in home.find(class_='sidebar-tree').find_all('a', class_='reference')] == ['extra.html']


def test_quarto_syntax_becomes_myst():
    "Callouts and fenced divs become MyST directives, attributes go, chapter links point at pages; code stays as it is."
    md = ('::: {.callout-note}\nA note [link](x.html){target="_blank"} and [word]{.smallcaps}\n:::\n'
          '## Heading {#sec-h}\nSee [losses](03_losses.ipynb#The-Fast-Loss) and [later](99_x.ipynb).\n'
          '```python\n#| not touched\n::: kept\n```')
    out = build_site.quarto_to_myst(md, {'03_losses.ipynb': 'losses.ipynb'})
    assert out.startswith(':::{note}\n') and '[link](x.html) and [word]{.smallcaps}' in out
    assert '(sec-h)=\n## Heading\n' in out and '[losses](losses.ipynb#the-fast-loss)' in out and '[later](99_x.ipynb)' in out
    assert '#| not touched\n::: kept' in out
    assert build_site.quarto_to_myst('::: {.callout-warning title="Careful"}\nx\n:::') == \
        ':::{admonition} Careful\n:class: warning\n\nx\n:::'
    opts, code = build_site.split_options('#| echo: false\n#| code-fold: show\nx = 1')
    assert opts == {'echo': 'false', 'code-fold': 'show'} and code == 'x = 1'
