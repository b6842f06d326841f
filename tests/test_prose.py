"""The prose of the course stays true to its own outputs: every number written in a chapter's markdown appears in
that chapter's code or stored outputs (where a cell formats it or asserts it), and no page points to a file a reader
does not have.

What counts as a number a reader takes as a claim: a decimal (0.953, also after a minus sign or in a range such as
0.96-1.16), an integer written as a ratio (46x) or a percentage (95%), an integer with a unit of time, memory, work or
data (28 MB, 9 h, 400 epochs, 50,000 images), and an integer marked as approximate (~600, about 1200). It is looked for
everywhere in a markdown cell: running text, tables, summaries, inline code, math and fenced blocks; only link targets
and HTML tags are left out. Numbers in exercise prompts are specifications, not claims, and are skipped; worked answers
(inside <details>) are checked. Markdown that a cell formats from stored results is an output, so it is evidence."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
CHAPTERS = sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

# numbers allowed in prose without a cell behind them, each with its reason
ALLOWED = {
    'index.ipynb': {'3.10': 'the minimum Python version', '2.13': 'the previous torch minor, a version in an install command',
                    '0.28': 'the previous torchvision minor, a version in an install command',
                    '4': 'GPUs in an example command', '8': 'GPUs in an example command'},
    '01_data.ipynb': {'2.8': 'the size of a download, a fact about the file'},
    '05_models.ipynb': {'61': "the paper's random-encoder accuracy (Table 1: 61.23%), rounded"},
    '00a_paper.ipynb': {'400': "the probe's epochs in the authors' earlier configurations, a fact about their files"},
    '06_dtp.ipynb': {'2000': "the batch size of the authors' DTP script, a fact about their file"},
}
# numbers the stricter check (units, approximations, code and math) finds in chapters that another change is rewriting;
# each is listed so that the check stays on for every other number of those chapters, and should be removed with them
PENDING = {
    '04_feedback.ipynb': {'40': 'owned by another change: "within 40 steps", in no cell'},
}
UNITS = (r'ms|s|h|min|minutes?|hours?|seconds?|days?|[KMGT]i?B|T?FLOPs?|GFLOP/s|epochs?|steps?|passes|points?|images|'
         r'digits|views|crops|patches|runs|seeds|GPUs?|cores|threads|processes|parameters|weights|updates|repetitions')
NUM = re.compile(r"""(?<![\w.\\^_{/])(?<![A-Za-z_]-)(      # not inside a word, a version, a path or a hyphenated name
      \d+\.\d+                                              # a decimal
    | \d+(?=x\b)                                            # a ratio, 46x
    | \d+(?=\s?%)                                           # a percentage
    | \d{1,3}(?:,\d{3})+(?=\s(?:""" + UNITS + r""")\b)      # an integer with thousands separators and a unit, 50,000 images
    | \d+(?=\s(?:""" + UNITS + r""")\b)                     # an integer with a unit, 28 MB, 400 epochs
    | (?<=~)\d[\d,]*                                        # an approximate integer, ~600
    | (?<=about\s)\d[\d,]* | (?<=nearly\s)\d[\d,]* | (?<=around\s)\d[\d,]*
    )(?![\w.]*\d)""", re.X)


def prose(md: str) -> str:
    "Markdown without link targets and HTML tags: every word, table, formula and code span a reader sees."
    for pat in (r'\]\([^)]*\)', r'<[^>]+>'):
        md = re.sub(pat, ' ', md, flags=re.S)
    return md


def numbers(md: str) -> list[str]:
    "The numbers of a piece of markdown, thousands separators removed."
    return [n.replace(',', '') for n in NUM.findall(prose(md))]


def claims(nb) -> list[str]:
    "Numbers stated in the markdown cells; in the exercises, only those inside worked answers."
    out, exercises = [], False
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        src = ''.join(c['source'])
        if '## Exercises' in src:
            exercises = True
            out += numbers(src.split('## Exercises')[0])
        if exercises: src = ' '.join(re.findall(r'<details>(.*?)</details>', ''.join(c['source']), flags=re.S))
        out += numbers(src)
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


def missing(nb, f: str = '') -> list[str]:
    "The numbers of the prose that no cell produces or checks, less the allowed and pending ones."
    have = set(re.findall(r'\d+(?:\.\d+)?', evidence(nb)))
    skip = {**ALLOWED.get(f, {}), **PENDING.get(f, {})}
    return sorted({n for n in claims(nb) if n not in have and n not in skip})


@pytest.mark.parametrize('f', CHAPTERS)
def test_numbers_in_prose_come_from_the_notebook(f):
    nb = json.loads((NBS / f).read_text())
    assert not missing(nb, f), f'{f}: numbers in the prose that no cell produces or checks: {missing(nb, f)}'


@pytest.mark.parametrize('f', sorted(PENDING))
def test_pending_numbers_are_still_there(f):
    "A pending exception that the chapter no longer needs must be removed, so that the check covers that number again."
    nb = json.loads((NBS / f).read_text())
    have = set(re.findall(r'\d+(?:\.\d+)?', evidence(nb)))
    stale = sorted(n for n in PENDING[f] if n not in claims(nb) or n in have)
    assert not stale, f'{f}: pending exceptions no longer needed, remove them from PENDING: {stale}'


def md(*cells, code='', out=''):
    "A notebook of markdown cells after one code cell with its output."
    return {'cells': [{'cell_type': 'code', 'source': [code], 'outputs': [{'text': [out]}]}] +
                     [{'cell_type': 'markdown', 'source': [c]} for c in cells]}


def test_the_number_check_catches_a_typed_number():
    nb = md('The probe reads 0.953, 46x the baseline, and 0.961 later.',
            '## Exercises\n1. Try 0.25.\n<details>Answer: 0.77</details>', code='print(0.953)', out='0.953\n')
    assert missing(nb) == ['0.77', '0.961', '46']


def test_the_number_check_reads_tables_summaries_units_code_and_math():
    nb = md('| loader | ms / epoch |\n|---|---|\n| ours | 194.0 |',                       # a table
            '## Summary\n- the epoch takes 12 s and 28 MB, 50,000 images, ~600 steps',        # a summary, units
            'it rises from `0.00535` to $0.00912$, then `-0.002`; a range 0.96-1.16',         # code, math, signs, ranges
            '```\nalpha = 0.25   # the top step\n```',                                        # a fenced block
            code='x = 1', out='1\n')
    assert missing(nb) == sorted(['0.002', '0.00535', '0.00912', '0.25', '0.96', '1.16', '12', '194.0', '28', '50000', '600'])


def test_the_number_check_leaves_names_versions_and_links_alone():
    nb = md('CONV6 and VGG6 on CIFAR100, in Python 3.10, see [the paper](https://doi.org/10.3389/fncom.2022.789253); '
            'layer 2 of 5, Table 1, a 3x3 convolution, a conv6-style head, <img src="fig_0.5.png">')
    assert missing(nb) == ['3.10']


def test_the_number_check_accepts_a_formatted_or_asserted_number():
    assert missing(md('The epoch takes 12.3 s, 46x faster, 28 MB.', code="assert round(r) == 46 and mb == 28",
                      out='12.3\n')) == []


@pytest.mark.parametrize('f', CHAPTERS + ['../README.md'])
def test_no_page_points_to_a_file_readers_lack(f):
    text = (NBS / f).read_text()
    if f.endswith('.ipynb'):  # sources and what the page shows; not the machine-specific metadata
        nb = json.loads(text)
        text = '\n'.join(''.join(c['source']) for c in nb['cells']) + '\n' + evidence(nb)
    for word in (r'\bdigest\b', *map(re.escape, ('/work/', '../shared', 'shared/paper'))):   # hexdigest() is no mention
        assert not re.search(word, text.lower()), f'{f} mentions {word!r}: readers of the course do not have it'
