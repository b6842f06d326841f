"""Re-pin constraints.txt from `pip freeze` of the tested environment (Python 3.11 or newer), keeping its pins for
Python 3.10: the lines marked `python_version < "3.11"`, made with Python 3.10's resolver (see constraints.txt's
header). A package that keeps such a pin gets its new pin marked `python_version >= "3.11"`.

    pip freeze --exclude-editable | python tools/lock.py constraints.txt
"""
import re, sys
from pathlib import Path

OLD, NEW = '; python_version < "3.11"', '; python_version >= "3.11"'
norm = lambda s: re.sub(r'[-_.]+', '-', s.split('==')[0].strip()).lower()

if __name__ == '__main__':
    if sys.version_info < (3, 11): sys.exit('tools/lock.py: lock from the tested Python (3.11 or newer), not 3.10')
    path = Path(sys.argv[1])
    old = path.read_text().splitlines()
    header = [l for l in old if l.startswith('#')]
    py310 = [l for l in old if l.replace(' ', '').endswith(OLD.replace(' ', ''))]
    split = {norm(l) for l in py310} | {norm(l) for l in old if l.replace(' ', '').endswith(NEW.replace(' ', ''))}
    frozen = [l.strip() for l in sys.stdin if '==' in l and not l.startswith(('-e', '#'))]
    pins = [f'{l} {NEW}' if norm(l) in split else l for l in frozen] + py310
    path.write_text('\n'.join(header + sorted(pins, key=lambda l: (norm(l), l))) + '\n')
    print(f'{path}: {len(frozen)} pins from this Python, {len(py310)} kept for Python 3.10; '
          'check them with: pytest tests/test_install.py')
