"""The course site (`make docs` without Quarto): every chapter of nbs/sidebar.yml gets a page with its title, its plots
and a sidebar in course order, and no nbdev/Quarto syntax shows on the page. Builds into a temporary folder."""
import html, json, re, shutil, subprocess, sys, tempfile
from html.parser import HTMLParser
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
sys.path.insert(0, str(ROOT / 'tools'))
import build_site  # noqa: E402


def _build(out, *extra):
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'build_site.py'), '--out', str(out), '--builder', 'nbconvert',
                        '--no-readme', *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site') / '_docs'
    state = lambda: [(f, (NBS / f).stat().st_mtime) for f in chapters()]
    for _ in range(2):  # a chapter written while the site was being built: build once more
        before = state()
        r = _build(out)
        if state() == before: break
    return out, r


def chapters() -> list[str]:
    "Notebooks of the sidebar that exist, in course order."
    return [f for f in build_site.flatten(build_site.read_sidebar(NBS / 'sidebar.yml')) if (NBS / f).exists()]


def nb(f): return json.loads((NBS / f).read_text())


def nb_title(f) -> str:
    for c in nb(f)['cells']:
        m = c['cell_type'] == 'markdown' and re.match(r'#\s+(.+)', ''.join(c['source']).strip())
        if m: return m.group(1).strip()


def has_stored_image(f) -> bool:
    return any(k.startswith('image/') for c in nb(f)['cells'] for o in c.get('outputs', []) for k in o.get('data', {}))


class Page(HTMLParser):
    "Sidebar links, the active entry, prev/next links, the title, images, and the text a reader sees (inline code apart)."
    def __init__(self, text):
        super().__init__()
        self.stack, self.sidebar, self.active, self.sections, self.imgs = [], [], [], [], []
        self.prev = self.next = None
        self.title, self.text, self._skip, self._in = '', [], 0, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get('class') or '').split()
        self.stack.append((tag, cls, a.get('id')))
        inside = {i for _, _, i in self.stack}
        if tag == 'a' and 'sidebar' in inside:
            self.sidebar.append(a['href'])
            if a.get('aria-current') == 'page': self.active.append(a['href'])
        if tag == 'a' and 'page-nav-prev' in cls: self.prev = a['href']
        if tag == 'a' and 'page-nav-next' in cls: self.next = a['href']
        if tag == 'img': self.imgs.append(a.get('src', ''))
        if tag in ('script', 'style', 'head', 'code'): self._skip += 1
        if tag == 'h1' and 'title' in cls: self._in = 'title'
        if 'sidebar-section-title' in cls: self._in = 'section'

    def handle_endtag(self, tag):
        while self.stack:
            t, _, _ = self.stack.pop()
            if t == tag: break
        if tag in ('script', 'style', 'head', 'code') and self._skip: self._skip -= 1
        if tag in ('h1', 'span'): self._in = None

    def handle_data(self, data):
        if self._in == 'title': self.title += data
        if self._in == 'section': self.sections.append(data.strip())
        if not self._skip: self.text.append(data)


def page(out, f) -> Page:
    p = out / build_site.page_name(f)
    assert p.exists(), f'{f}: no page {p.name} in the site'
    return Page(p.read_text())


def test_every_chapter_has_a_page_with_its_title(site):
    out, _ = site
    assert chapters() and chapters()[0] == 'index.ipynb'
    for f in chapters():
        assert page(out, f).title.strip() == nb_title(f), f


def test_stored_plots_are_on_the_page(site):
    "Chapters whose notebook stores an image output show at least one embedded image."
    out, _ = site
    with_images = [f for f in chapters() if has_stored_image(f)]
    for f in with_images:
        imgs = page(out, f).imgs
        assert any(s.startswith('data:image/') for s in imgs), f'{f}: stored plots but no <img> on the page'


def exported_names(f) -> set[str]:
    "Public functions and classes defined in the `#| export`/`#| exports` cells of a notebook."
    names = set()
    for c in nb(f)['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and re.match(r'\s*#\|\s*exports?\b', src):
            names |= set(re.findall(r'^(?:def|class)\s+([A-Za-z]\w*)', src, re.M))
    return names


def test_exported_names_are_documented(site):
    "nbdev's `show_doc` output is on the page: each chapter that exports functions or classes documents them under their names."
    out, _ = site
    for f in chapters():
        names = {n.lower() for n in exported_names(f)}
        if not names: continue
        text = (out / build_site.page_name(f)).read_text()
        ids = {i.lower() for i in re.findall(r'<h3 id="([^"]+)"', text)}
        assert names & ids, f'{f}: none of {sorted(names)[:5]} has a show_doc heading'
        assert 'class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-OutputArea-output' in text


def test_no_directive_or_quarto_text_on_the_pages(site):
    "No `#|` option lines, `:::` fenced-div markers or `{#id .class key=value}` attributes visible as text."
    out, _ = site
    bad = re.compile(r'#\||^\s*:::|\{[#.][A-Za-z][\w-]*[^}]*\}|\{(?:target|style|width)=', re.M)
    for f in chapters():
        text = ''.join(page(out, f).text)
        hits = [m.group(0) for m in bad.finditer(text)]
        assert not hits, f'{f}: {hits[:5]}'


def test_sidebar_in_course_order(site):
    "Every page carries the same sidebar: the existing chapters in sidebar.yml's order, its sections, the page marked; prev/next follow it."
    out, _ = site
    order = [build_site.page_name(f) for f in chapters()]
    tree = build_site.read_sidebar(NBS / 'sidebar.yml')
    sections = [it['section'] for it in tree if isinstance(it, dict) and any((NBS / f).exists() for f in build_site.flatten([it]))]
    for i, f in enumerate(chapters()):
        p = page(out, f)
        assert p.sidebar == order, f
        assert p.active == [order[i]], f
        assert p.sections == sections, f
        assert p.prev == (order[i - 1] if i else None), f
        assert p.next == (order[i + 1] if i + 1 < len(order) else None), f


def test_links_between_pages_resolve(site):
    "Links between pages reach an existing page (only links to chapters not written yet may dangle), and in-page links their anchor."
    out, _ = site
    unwritten = {build_site.page_name(f) for f in build_site.flatten(build_site.read_sidebar(NBS / 'sidebar.yml'))
                 if not (NBS / f).exists()}
    pages = {str(p.relative_to(out)) for p in out.rglob('*.html')}
    bad = [(p, h) for p, h in build_site.broken_links(out)
           if (h.partition('#')[0] and h.partition('#')[0] not in pages | unwritten) or h.startswith('#')]
    assert not bad, bad[:10]
    # (a link to a documented name on another page whose anchor is missing is a chapter's problem: the build warns)


def test_missing_chapters_are_skipped_with_a_warning(tmp_path):
    "A sidebar entry whose notebook is not written yet is left out of the site, with a warning; the build still succeeds."
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    shutil.copy(NBS / 'index.ipynb', nbs / 'index.ipynb')
    (nbs / 'sidebar.yml').write_text('website:\n  sidebar:\n    contents:\n      - index.ipynb\n'
                                     '      - section: "Later"\n        contents:\n          - 42_not_written.ipynb\n')
    r = _build(tmp_path / 'site', '--nbs', str(nbs))
    assert '42_not_written.ipynb' in r.stderr and 'does not exist' in r.stderr
    p = Page((tmp_path / 'site' / 'index.html').read_text())
    assert p.sidebar == ['index.html'] and p.sections == [] and p.next is None


def test_quarto_syntax_becomes_html():
    "Fenced divs, attributes and heading ids turn into HTML; code blocks are left alone."
    md = ('::: {.callout-note}\nA note [link](x.html){target="_blank"} and [word]{.smallcaps}\n:::\n'
          '## Heading {#sec-h}\n```python\n#| not touched\n::: kept\n```')
    out = build_site.quarto_to_markdown(md)
    assert '<div class="callout callout-note">' in out and '</div>' in out
    assert '<a href="x.html" target="_blank">link</a>' in out and '<span class="smallcaps">word</span>' in out
    assert '<div id="sec-h"></div>' in out and '## Heading\n' in out
    assert '#| not touched\n::: kept' in out
    opts, code = build_site.split_options('#| echo: false\n#| code-fold: show\nx = 1')
    assert opts == {'echo': 'false', 'code-fold': 'show'} and code == 'x = 1'


def test_math_reads_without_mathjax():
    "Math keeps its TeX for MathJax and shows a readable fallback where MathJax cannot load (no network)."
    h = build_site.tex_to_html(r'\lVert z_{1,i} - z_{2,j}\rVert_1 \le \tau + \delta')
    assert h == '‖ z<sub>1,i</sub> − z<sub>2,j</sub>‖<sub>1</sub> ≤ τ + δ'
    assert build_site.tex_to_html(r'\frac{a}{b+1} < 2^{k}') == 'a/(b+1) &lt; 2<sup>k</sup>'
    build_site._patch_math()
    from nbconvert.filters import markdown2html
    out = markdown2html('Error $\\tau_s$ and $$x_i$$')
    assert 'data-tex="\\tau_s"' in out and 'τ<sub>s</sub>' in out and 'class="math display"' in out


def _screenshot(url, png, tmp):
    cmd = [shutil.which('chromium'), '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           f'--user-data-dir={tmp}', f'--screenshot={png}', '--window-size=1280,2000', url]
    subprocess.run(cmd, capture_output=True, timeout=60)
    assert png.exists(), f'chromium wrote no screenshot of {url}'


@pytest.mark.skipif(not shutil.which('chromium'), reason='chromium is not installed: no screenshots of the site (apt-get install chromium)')
def test_screenshots_are_not_blank(site, tmp_path):
    "Headless Chromium renders the home page and the first chapter to something that is not a single colour."
    import matplotlib.image as mpimg
    out, _ = site
    pages = ['index.ipynb'] + chapters()[1:2]
    for f in pages:
        png = tmp_path / (Path(f).stem + '.png')
        _screenshot((out / build_site.page_name(f)).as_uri(), png, tmp_path / ('profile_' + Path(f).stem))
        img = mpimg.imread(png)
        assert img.shape[0] >= 1000 and img.shape[1] >= 1000, img.shape
        assert img[..., :3].std() > 0.05, f'{f}: the screenshot is (nearly) one colour'
