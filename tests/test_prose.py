"""The prose of the course stays true to its own outputs: every number written in a chapter's markdown appears in
that chapter's code or stored outputs (where a cell formats it or asserts it), and no page points to a file a reader
does not have. Numbers in exercise prompts are specifications, not claims, and are skipped; worked answers
(inside <details>) are checked."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
CHAPTERS = sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

# numbers allowed in prose without a cell behind them, each with its reason
ALLOWED = {
    'index.ipynb': {'3.10': 'the minimum Python version'},
    '01_data.ipynb': {'2.8': 'the size of a download, a fact about the file'},
    '05_models.ipynb': {'61': "the paper's random-encoder accuracy (Table 1: 61.23%), rounded"},
}
# a decimal number, or an integer written as a ratio (46x) or a percentage (95%); not inside words, math or versions
NUM = re.compile(r'(?<![\w.$\\^_{/-])(\d+\.\d+|\d+(?=x\b)|\d+(?=\s?%))(?![\w.]*\d)')


def prose(md: str) -> str:
    "Markdown without code, math and link targets: the words a reader takes as claims."
    for pat in (r'```.*?```', r'`[^`]*`', r'\$\$.*?\$\$', r'\$[^$\n]*\$', r'\]\([^)]*\)', r'<[^>]+>'):
        md = re.sub(pat, ' ', md, flags=re.S)
    return md


def claims(nb) -> list[str]:
    "Numbers stated in the markdown cells; in the exercises, only those inside worked answers."
    out, exercises = [], False
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        src = ''.join(c['source'])
        if '## Exercises' in src:
            exercises = True
            src = src.split('## Exercises')[0]
            out += NUM.findall(prose(src)); src = ''
        if exercises: src = ' '.join(re.findall(r'<details>(.*?)</details>', ''.join(c['source']), flags=re.S))
        out += NUM.findall(prose(src))
    return out


def evidence(nb) -> str:
    "Everything a cell of the notebook computes or shows: code and stored text outputs."
    parts = []
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        parts.append(''.join(c['source']))
        for o in c.get('outputs', []):
            parts.append(''.join(o.get('text', '')))
            parts += [''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/')]
    return '\n'.join(parts)


@pytest.mark.parametrize('f', CHAPTERS)
def test_numbers_in_prose_come_from_the_notebook(f):
    nb = json.loads((NBS / f).read_text())
    have = set(re.findall(r'\d+(?:\.\d+)?', evidence(nb)))
    missing = sorted({n for n in claims(nb) if n not in have and n not in ALLOWED.get(f, {})})
    assert not missing, f'{f}: numbers in the prose that no cell produces or checks: {missing}'


def test_the_number_check_catches_a_typed_number():
    nb = {'cells': [{'cell_type': 'code', 'source': ['print(0.953)'], 'outputs': [{'text': ['0.953\n']}]},
                    {'cell_type': 'markdown', 'source': ['The probe reads 0.953, 46x the baseline, and 0.961 later.']},
                    {'cell_type': 'markdown', 'source': ['## Exercises\n1. Try 0.25.\n<details>Answer: 0.77</details>']}]}
    have = set(re.findall(r'\d+(?:\.\d+)?', evidence(nb)))
    assert sorted(n for n in claims(nb) if n not in have) == ['0.77', '0.961', '46']


@pytest.mark.parametrize('f', CHAPTERS + ['../README.md'])
def test_no_page_points_to_a_file_readers_lack(f):
    text = (NBS / f).read_text()
    if f.endswith('.ipynb'):  # sources and what the page shows; not the machine-specific metadata
        nb = json.loads(text)
        text = '\n'.join(''.join(c['source']) for c in nb['cells']) + '\n' + evidence(nb)
    for word in (r'\bdigest\b', *map(re.escape, ('/work/', '../shared', 'shared/paper'))):   # hexdigest() is no mention
        assert not re.search(word, text.lower()), f'{f} mentions {word!r}: readers of the course do not have it'
