"""The fault suite: every bad input is one clear line, and no injected fault loses or mixes a run's data.

Each case records its outcome; the last test prints the tally (and writes it to $BIOSS_FAULTS_SUMMARY if set):
bad inputs tried, clear errors, tracebacks; faults injected, runs lost. Small configs, seconds each, CPU only, no downloads."""
import io, json, os, signal, subprocess, sys, time, contextlib
from pathlib import Path
import pytest
import torch
from bioss_nb.cli import main
from bioss_nb.train import get_config, train, RunLock, RunFolderError

SMALL = ['--preset', 'tiny', '--n-train', '400', '--batch-size', '100', '--progress', 'false', '--device', 'cpu']
TALLY = dict(bad_inputs=0, clear=0, tracebacks=0, faults=0, runs_lost=0)


def cli(*argv):
    "Run `bioss-nb` in-process: (exit status, stdout, stderr); an exception escaping `main` counts as a traceback."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main([str(a) for a in argv])
        except BaseException as e:
            TALLY['tracebacks'] += 1
            raise AssertionError(f"traceback from bioss-nb {' '.join(map(str, argv))}: {type(e).__name__}: {e}")
    return rc, out.getvalue(), err.getvalue()


def bad_cli(*argv, says=()):
    "A bad command line: exit status 2 or 1, exactly one line on stderr naming what is wrong, nothing else."
    TALLY['bad_inputs'] += 1
    rc, out, err = cli(*argv)
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc in (1, 2), (rc, err)
    assert len(lines) == 1, err
    assert 'Traceback' not in err and 'weights_only=False' not in err, err
    for s in says: assert s in lines[0], (s, lines[0])
    TALLY['clear'] += 1
    return lines[0]


def bad_call(fn, *says, exc=ValueError):
    "A bad library call: a `ValueError` whose message names the argument and the value."
    TALLY['bad_inputs'] += 1
    try: fn()
    except exc as e:
        msg = str(e)
        assert '\n' not in msg.strip(), msg
        for s in says: assert s in msg, (s, msg)
        TALLY['clear'] += 1
        return msg
    except Exception as e:
        TALLY['tracebacks'] += 1
        raise AssertionError(f"{type(e).__name__} instead of a clear {exc.__name__}: {e}")
    raise AssertionError('accepted silently')


def weights(run):
    sd = torch.load(Path(run) / 'checkpoint.pt', weights_only=True)
    return {**{f'e.{k}': v for k, v in sd['encoder'].items()}, **{f'h.{k}': v for k, v in sd['heads'].items()}}


def same_weights(a, b):
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    "A finished 1-epoch E2E run and a finished GLL run."
    d = tmp_path_factory.mktemp('runs')
    assert cli('train', *SMALL, '--epochs', '1', '--out', d / 'e2e')[0] == 0
    assert cli('train', *SMALL, '--epochs', '1', '--schedule', 'gll', '--out', d / 'gll')[0] == 0
    return d


# ---------------------------------------------------------------- bad command lines
@pytest.mark.parametrize('args,says', [
    (['--rule', 'fa'], ['--rule=fa', 'bp, rf, urf']),
    (['--n-train', 'abc'], ['--n-train=abc', 'int']),
    (['--lr', 'abc'], ['--lr=abc', 'float']),
    (['--grad-block', 'maybe'], ['--grad-block=maybe', 'bool']),
    (['--stop-after', '0'], ['stop_after=0', 'positive']),
    (['--stop-after', '-1'], ['stop_after=-1', 'positive']),
    (['--seed', '-3'], ['seed=-3', '>= 0']),
    (['--epochs', '0'], ['epochs=0', 'positive integer']),
    (['--schedule', 'rll', '--rule', 'dtp'], ["rule='dtp' needs schedule='e2e'"]),
    (['--encoder', 'conv6'], ["encoder='conv6' does not fit data='mnist5k'"]),
    (['--loggers', 'jsonl,wandb'], ["loggers='wandb'"]),
    (['--preset', 'nope'], ['--preset=nope', 'tiny']),
    (['--no-such-option', '1'], ['--no-such-option']),
])
def test_bad_train_options(tmp_path, args, says):
    bad_cli('train', *SMALL, '--out', tmp_path / 'r', *args, says=says)
    assert not (tmp_path / 'r' / 'checkpoint.pt').exists()


def test_n_train_none_is_honoured():
    from bioss_nb.cli import parse_args
    assert parse_args(['train', '--preset', 'tiny', '--n-train', 'none'])[1]['n_train'] is None
    assert parse_args(['train', '--preset', 'tiny'])[1]['n_train'] == 4000


def test_bad_commands(tmp_path):
    bad_cli('frobnicate', says=['frobnicate'])
    bad_cli(says=['train'])
    bad_cli('table', *SMALL, '--rows', 'nope', '--out', tmp_path, says=["row='nope'"])
    bad_cli('table', *SMALL, '--seeds', 'abc', '--out', tmp_path, says=['--seeds'])
    bad_cli('train', *SMALL, '--resume', '--restart', '--out', tmp_path / 'x', says=['--resume and --restart'])


def test_bad_out_folders(tmp_path):
    f = tmp_path / 'file'; f.write_text('x')
    bad_cli('train', *SMALL, '--out', f, says=[str(f), 'not a folder'])
    bad_cli('train', *SMALL, '--out', f / 'sub', says=['cannot be written'])
    ro = Path('/proc/bioss-nb-run')                     # a folder no one can create
    bad_cli('train', *SMALL, '--out', ro, says=[str(ro), 'cannot be written'])


def test_bad_eval(tmp_path, finished):
    bad_cli('eval', tmp_path / 'nonexistent', says=['nonexistent', 'not a folder'])
    bad_cli('eval', tmp_path, says=[str(tmp_path), 'not a run folder'])
    for spec in ('5', '-5'):
        bad_cli('eval', finished / 'e2e', '--layers', spec, says=[f'--layers={spec}', 'blocks 0..1'])
    bad_cli('eval', finished / 'e2e', '--layers', 'abc', says=['--layers=abc'])
    bad_cli('eval', finished / 'e2e', '--probe-epochs', '0', says=['probe_epochs=0'])


# ---------------------------------------------------------------- broken run files
def _resume_with(tmp_path, finished, damage, *says):
    run = tmp_path / 'run'
    import shutil; shutil.copytree(finished / 'e2e', run)
    damage(run)
    bad_cli('train', *SMALL, '--epochs', '2', '--out', run, says=says)
    bad_cli('eval', run, '--device', 'cpu', says=says)


@pytest.mark.parametrize('name,damage,says', [
    ('truncated', lambda r: (r / 'checkpoint.pt').write_bytes((r / 'checkpoint.pt').read_bytes()[:300]), ['truncated or corrupt']),
    ('random', lambda r: (r / 'checkpoint.pt').write_bytes(os.urandom(2000)), ['truncated or corrupt']),
    ('empty', lambda r: (r / 'checkpoint.pt').write_bytes(b''), ['is empty']),
    ('missing keys', lambda r: torch.save({'encoder': {}}, r / 'checkpoint.pt'), ['lacks']),
    ('pickle payload', lambda r: torch.save({'x': subprocess.Popen}, r / 'checkpoint.pt'), ['objects other than tensors']),
    ('truncated config', lambda r: (r / 'config.json').write_text((r / 'config.json').read_text()[:40]), ['config.json', 'not valid JSON']),
])
def test_broken_run_files(tmp_path, finished, name, damage, says):
    _resume_with(tmp_path, finished, damage, 'checkpoint.pt' if 'config' not in name else 'config.json', *says, '--restart')


def test_resume_without_checkpoint(tmp_path):
    bad_cli('train', *SMALL, '--resume', '--out', tmp_path / 'r', says=['no checkpoint'])


def test_fewer_epochs_and_gll_extension_refused(finished):
    bad_cli('train', *SMALL, '--epochs', '1', '--schedule', 'gll', '--ll-epochs', '2', '--out', finished / 'gll',
            says=['GLL', '--restart'])


def test_dataset_offline(tmp_path, monkeypatch):
    "A data set that cannot be downloaded: one line naming it, nothing fetched (the download itself is made to fail)."
    import urllib.request
    def offline(*a, **k): raise urllib.error.URLError('no network')
    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    monkeypatch.setenv('BIOSS_DATA', str(tmp_path / 'data'))
    bad_cli('train', '--preset', 'tiny', '--data', 'cifar10', '--probe-data', 'cifar10', '--encoder', 'conv6', '--progress', 'false',
            '--device', 'cpu', '--out', tmp_path / 'r', says=['cifar10'])
    bad_cli('download', 'mnist', '--root', tmp_path / 'data', says=['mnist'])


# ---------------------------------------------------------------- bad library calls
def test_bad_library_calls():
    from bioss_nb.deform import two_views
    from bioss_nb.losses import ContrastiveHinge
    from bioss_nb.models import conv6, build_encoder
    from bioss_nb.evaluate import linear_probe
    bad_call(lambda: get_config(seed=-3), 'seed=-3')
    bad_call(lambda: get_config(lr='abc'), "lr='abc'")
    bad_call(lambda: get_config(n_train='none'), "n_train='none'")
    bad_call(lambda: get_config(rule='fa'), "rule='fa'")
    bad_call(lambda: train(get_config('tiny', progress=False), stop_after=0), 'stop_after=0')
    x = torch.rand(4, 3, 32, 32)
    bad_call(lambda: two_views(x * 255), 'x')
    bad_call(lambda: two_views(x[:0]), '0')
    bad_call(lambda: ContrastiveHinge(tau=-1.), 'tau=-1')
    z = torch.randn(6, 8)
    bad_call(lambda: ContrastiveHinge()(z[:1], z[:1]), '1')
    bad_call(lambda: ContrastiveHinge(n_negs=10)(z, z), 'n_negs=10', '6')
    enc = conv6()
    bad_call(lambda: enc(torch.rand(2, 3, 28, 28)), '28')
    bad_call(lambda: enc(torch.rand(3, 32, 32)), '3')
    bad_call(lambda: enc(torch.rand(2, 1, 32, 32)), '1')
    bad_call(lambda: enc(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)), 'uint8')
    bad_call(lambda: build_encoder('mnist', 'bp')(torch.rand(2, 3, 28, 28)), '3')
    bad_call(lambda: linear_probe(torch.rand(10, 4), torch.zeros(9, dtype=torch.long),
                                  {'test': (torch.rand(5, 4), torch.zeros(5, dtype=torch.long))}), '10', '9')


# ---------------------------------------------------------------- injected faults: nothing lost, nothing mixed
def fault(): TALLY['faults'] += 1
def lost(): TALLY['runs_lost'] += 1


def test_second_writer_refused(tmp_path, finished):
    fault()
    run = finished / 'e2e'
    before = (run / 'metrics.jsonl').read_text(), weights(run)
    with RunLock(run):                                   # as if another `train` held the folder
        line = bad_cli('train', *SMALL, '--epochs', '1', '--seed', '7', '--restart', '--out', run,
                       says=[str(run), 'in use', f'pid {os.getpid()}'])
    if (run / 'metrics.jsonl').read_text() != before[0] or not all(torch.equal(a, b) for a, b in zip(before[1].values(), weights(run).values())): lost()
    assert TALLY['runs_lost'] == 0


def test_row_held_by_another_table_is_left_to_it(tmp_path):
    "Several `table` processes may share a grid folder: a row whose lock another holds is not computed twice; the table says so, and the next run collects it."
    fault()
    row = tmp_path / 'random' / 'seed0'
    with RunLock(row, '.row.lock'):                      # as if another `table` were running that row
        rc, out, err = cli('table', *TABLE, '--out', tmp_path)
    assert rc == 0, err
    assert 'taken by another process (pid' in out and not (row / 'result.json').exists(), out
    assert 'not finished: running in another process' in (tmp_path / 'table.md').read_text()
    assert cli('table', *TABLE, '--out', tmp_path)[0] == 0
    res = [json.loads(l) for l in (tmp_path / 'results.jsonl').read_text().splitlines()]
    if 'error' in res[0] or not (row / 'result.json').exists(): lost()
    assert TALLY['runs_lost'] == 0


def test_diverged_row_does_not_stop_the_table(tmp_path):
    "lr=1e38 overflows in the first step: that row is marked failed, the other row and the table still come out."
    fault()
    rc, out, err = cli('table', *SMALL, '--rows', 'hinge-e2e-bp', 'random', '--seeds', '0', '--epochs', '1',
                       '--probe-epochs', '2', '--n-probe', '500', '--lr', '1e38', '--out', tmp_path)
    assert rc == 0, err
    md = (tmp_path / 'table.md').read_text()
    assert 'failed: NonFiniteLossError' in md and '| Rnd. encoder |' in md, md
    res = [json.loads(l) for l in (tmp_path / 'results.jsonl').read_text().splitlines()]
    assert [('error' in r) for r in res] == [True, False]


def test_nan_embeddings_are_a_nonfinite_loss(tmp_path):
    "Embeddings that are NaN stop the run with NonFiniteLossError (not the loss's input check), keeping the checkpoint."
    from bioss_nb.core import NonFiniteLossError
    fault()
    tr = train(get_config('tiny', n_train=400, batch_size=100, epochs=2, progress=False, device='cpu', out=str(tmp_path)), stop_after=2)
    good = (tmp_path / 'checkpoint.pt').read_bytes()
    with torch.no_grad(): next(tr.heads[0].parameters()).fill_(float('nan'))
    with pytest.raises(NonFiniteLossError, match=r'loss is nan at stage 0, epoch 0, batch 2 \(step 2\)'): tr.fit()   # found when the losses are read
    if (tmp_path / 'checkpoint.pt').read_bytes() != good: lost()
    assert TALLY['runs_lost'] == 0


def test_exploding_loss_is_reported(tmp_path):
    fault()
    rc, out, err = cli('train', *SMALL, '--epochs', '2', '--lr', '1e6', '--out', tmp_path)
    assert rc == 0
    assert 'the loss is exploding' in err + out
    ev = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    assert any(r.get('event') == 'exploding' for r in ev)


def test_torn_metrics_line(tmp_path):
    fault()
    assert cli('train', *SMALL, '--epochs', '2', '--stop-after', '5', '--out', tmp_path)[0] == 0
    with open(tmp_path / 'metrics.jsonl', 'a') as f: f.write('{"stage": 0, "epo')      # a kill during the write
    assert cli('train', *SMALL, '--epochs', '2', '--out', tmp_path)[0] == 0
    ev = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
    if [r['epoch'] for r in ev] != [0, 1]: lost()
    assert TALLY['runs_lost'] == 0


def test_orphaned_tmp_files_removed(tmp_path):
    fault()
    assert cli('train', *SMALL, '--epochs', '1', '--stop-after', '2', '--out', tmp_path)[0] == 0
    (tmp_path / '.checkpoint.pt.abc123.tmp').write_bytes(b'half a checkpoint')
    assert cli('train', *SMALL, '--epochs', '1', '--out', tmp_path)[0] == 0
    assert not list(tmp_path.glob('.*.tmp'))


@pytest.mark.parametrize('schedule', ['e2e', 'rll'])
def test_extend_finished_run(tmp_path, schedule):
    "--epochs 2 on a finished 1-epoch run continues it, ending exactly where a 2-epoch run ends."
    fault()
    a, b = tmp_path / 'a', tmp_path / 'b'
    assert cli('train', *SMALL, '--schedule', schedule, '--epochs', '2', '--out', a)[0] == 0
    assert cli('train', *SMALL, '--schedule', schedule, '--epochs', '1', '--out', b)[0] == 0
    assert cli('train', *SMALL, '--schedule', schedule, '--epochs', '2', '--out', b)[0] == 0
    if not same_weights(a, b): lost()
    assert same_weights(a, b)
    passes = 2 * (2 if schedule == 'rll' else 1)          # RLL: epochs x L passes, L = 2 blocks
    from bioss_nb.runs import read_metrics
    assert [r['epoch'] for r in read_metrics(b)] == list(range(passes))          # the epoch records (step records aside)
    bad_cli('train', *SMALL, '--schedule', schedule, '--epochs', '1', '--out', b, says=['more than the', '--restart'])


def test_ctrl_c_checkpoints_and_resumes(tmp_path):
    "SIGINT mid-run: exit status 130, one line, a checkpoint; the same command then finishes exactly like an uninterrupted run."
    fault()
    a, b = tmp_path / 'a', tmp_path / 'b'
    args = [*SMALL, '--epochs', '3', '--n-train', '1000']
    assert cli('train', *args, '--out', a)[0] == 0
    env = dict(os.environ)                               # the same threads as this process: bitwise-equal arithmetic
    p = subprocess.Popen([str(Path(sys.executable).parent / 'bioss-nb'), 'train', *args, '--out', str(b)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (b / 'metrics.jsonl').exists() and time.time() - t0 < 120: time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode in (130, 0), err                 # 0: it had already finished when the signal came
    if p.returncode == 130:
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and 'SIGINT' in lines[0] and 'resume' in lines[0], err
        assert (b / 'checkpoint.pt').exists()
    assert cli('train', *args, '--out', b)[0] == 0
    if not same_weights(a, b): lost()
    assert same_weights(a, b)


# ---------------------------------------------------------------- the run's own record is the truth
@pytest.mark.parametrize('how', ['deleted', 'edited'])
def test_resume_checks_the_checkpoint_config(tmp_path, how):
    "A deleted or edited config.json does not let a resume mix settings: the checkpoint's own config decides."
    fault()
    run = tmp_path / 'r'
    assert cli('train', *SMALL, '--epochs', '2', '--stop-after', '2', '--out', run)[0] == 0
    ck = torch.load(run / 'checkpoint.pt', weights_only=True)
    if how == 'deleted': (run / 'config.json').unlink()
    else:
        c = json.loads((run / 'config.json').read_text()); c['lr'] = 0.01; (run / 'config.json').write_text(json.dumps(c))
    says = ['lr=0.001'] if how == 'deleted' else ['config.json', 'edited', 'lr=0.01', 'lr=0.001']
    bad_cli('train', *SMALL, '--epochs', '2', '--lr', '0.01', '--out', run, says=says)
    if torch.load(run / 'checkpoint.pt', weights_only=True)['config'] != ck['config']: lost()
    assert TALLY['runs_lost'] == 0
    if how == 'deleted':                                 # the same settings resume, and config.json is written again
        assert cli('train', *SMALL, '--epochs', '2', '--out', run)[0] == 0
        assert json.loads((run / 'config.json').read_text())['lr'] == ck['config']['lr']


def test_corrupt_metrics_line_is_reported(tmp_path):
    "A damaged line inside metrics.jsonl (not a torn last line) is reported on resume, and the file as it was is kept."
    fault()
    assert cli('train', *SMALL, '--epochs', '4', '--stop-after', '12', '--out', tmp_path)[0] == 0
    lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
    lines[1] = lines[1][:20] + '#garbage'
    (tmp_path / 'metrics.jsonl').write_text('\n'.join(lines) + '\n')
    rc, out, err = cli('train', *SMALL, '--epochs', '4', '--out', tmp_path)
    assert rc == 0, err
    warn = [l for l in err.splitlines() if 'metrics.jsonl' in l]
    assert len(warn) == 1 and f'line 2 of {len(lines)}' in warn[0] and 'metrics.damaged.jsonl' in warn[0], err
    if '#garbage' not in (tmp_path / 'metrics.damaged.jsonl').read_text(): lost()
    assert TALLY['runs_lost'] == 0


TABLE = [*SMALL, '--rows', 'random', '--seeds', '0', '--probe-epochs', '2', '--n-probe', '500']


def test_table_rerun_with_other_settings_refused(tmp_path):
    "A grid folder belongs to one configuration: another is refused in one line, and the finished results stay."
    fault()
    assert cli('table', *TABLE, '--out', tmp_path)[0] == 0
    before = {f: (tmp_path / f).read_text() for f in ('table.md', 'results.jsonl')}
    bad_cli('table', *TABLE, '--perturb-rot', '10', '--out', tmp_path, says=["row 'random'", 'perturb_rot=30.0 (now 10.0)', 'another --out'])
    if any((tmp_path / f).read_text() != t for f, t in before.items()): lost()
    assert TALLY['runs_lost'] == 0


def test_truncated_row_result_is_recomputed(tmp_path):
    fault()
    assert cli('table', *TABLE, '--out', tmp_path)[0] == 0
    res = tmp_path / 'random' / 'seed0' / 'result.json'
    good = json.loads(res.read_text())
    res.write_text(res.read_text()[:25])                 # a kill mid-write on a file system without atomic renames
    assert cli('table', *TABLE, '--out', tmp_path)[0] == 0
    rows = [json.loads(l) for l in (tmp_path / 'results.jsonl').read_text().splitlines()]
    if 'error' in rows[0] or rows[0]['perturbed'] != good['perturbed']: lost()
    assert TALLY['runs_lost'] == 0


def test_out_that_is_not_a_run_is_refused(tmp_path):
    "--out on a folder of someone else's files: refused, nothing deleted; --out '' refused."
    fault()
    (tmp_path / 'result.json').write_text('{"mine": 1}'); (tmp_path / 'tb').mkdir(); (tmp_path / 'tb' / 'events').write_text('x')
    (tmp_path / 'metrics.jsonl').write_text('{"my": "notes"}\n')
    bad_cli('train', *SMALL, '--epochs', '1', '--out', tmp_path, says=[str(tmp_path), 'not a run folder', 'metrics.jsonl'])
    bad_cli('table', *TABLE, '--out', tmp_path, says=[str(tmp_path), 'not a grid folder'])
    if not ((tmp_path / 'result.json').exists() and (tmp_path / 'tb' / 'events').exists()
            and (tmp_path / 'metrics.jsonl').read_text() == '{"my": "notes"}\n'): lost()
    assert TALLY['runs_lost'] == 0
    bad_cli('train', *SMALL, '--out', '', says=["out=''"])
    bad_cli('table', *TABLE, '--out', '', says=["out=''"])


def test_grid_folder_with_a_custom_row_is_accepted(tmp_path):
    """A grid folder that holds a row of a registered loss or rule ('{loss}-{schedule}-{rule}', seed folders only) stays a
    grid folder for a later command that does not name that row; the same folder with anything else in it is refused."""
    from bioss_nb.experiments import _check_grid_folder
    from bioss_nb.train import RunFolderError
    (tmp_path / 'mine-gll-bp' / 'seed0').mkdir(parents=True); (tmp_path / 'simclr-e2e-bp' / 'seed0').mkdir(parents=True)
    (tmp_path / 'results.jsonl').write_text('')
    _check_grid_folder(tmp_path)
    (tmp_path / 'mine-gll-bp' / 'notes.txt').write_text('x')
    with pytest.raises(RunFolderError, match='holds mine-gll-bp'): _check_grid_folder(tmp_path)
    (tmp_path / 'mine-gll-bp' / 'notes.txt').unlink(); (tmp_path / 'mine-rows').mkdir()
    with pytest.raises(RunFolderError, match='holds mine-rows'): _check_grid_folder(tmp_path)


def _children(pid):
    "Process ids whose parent is `pid` (Linux /proc)."
    kids = []
    for d in Path('/proc').iterdir():
        try:
            if d.name.isdigit() and int((d / 'stat').read_text().rsplit(')', 1)[1].split()[1]) == pid: kids.append(int(d.name))
        except (OSError, ValueError, IndexError): pass
    return kids


def _alive(pid):
    try: return (Path('/proc') / str(pid) / 'stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False


@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads /proc')
def test_grid_workers_end_with_their_parent(tmp_path):
    "kill -9 of `table --jobs 2`: its worker processes end too, and hold no lock on a rerun."
    fault()
    args = [*SMALL, '--rows', 'hinge-e2e-bp', 'hinge-e2e-rf', '--seeds', '0', '--epochs', '200', '--jobs', '2', '--out', str(tmp_path)]
    p = subprocess.Popen([str(Path(sys.executable).parent / 'bioss-nb'), 'table', *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list(tmp_path.glob('*/seed0/metrics.jsonl')) and time.time() - t0 < 120: time.sleep(0.1)
    kids = [k for k in _children(p.pid) if 'spawn_main' in (Path('/proc') / str(k) / 'cmdline').read_text(errors='replace')]
    assert len(kids) == 2, kids
    p.kill(); p.wait()
    t0 = time.time()
    while any(map(_alive, kids)) and time.time() - t0 < 20: time.sleep(0.2)
    left = [k for k in kids if _alive(k)]
    for k in left: os.kill(k, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent"
    for d in [tmp_path, *tmp_path.glob('*/seed0')]:      # no stale lock: a rerun can take every folder, once the kernel has
        lock, t0 = RunLock(d), time.time()               # closed the dead workers' files (as for the workers, up to 20 s)
        while not lock.try_acquire() and time.time() - t0 < 20: time.sleep(0.2)
        assert lock.f is not None, f"{d} is still locked by {lock.holder} after its workers ended"
        lock.release()


# ---------------------------------------------------------------- accepted nonsense, refused before any work
@pytest.mark.parametrize('cmd,args,says', [
    ('train', ['--lr', '0x10'], ['--lr=0x10', 'decimal']),
    ('train', ['--perturb-seed', '-1'], ['perturb_seed=-1']),
    ('train', ['--n-train', '100000'], ['n_train=100000', '4000 images']),
    ('train', ['--n-probe', '100000'], ['n_probe=100000', '4000']),
    ('train', ['--seed', str(2**63)], [f'seed={2**63}', '2^63']),
    ('train', ['--perturb-shift', '-1'], ['perturb_shift=-1']),
    ('train', ['--head-dim', '1000000000000'], ['head_dim=1000000000000']),
    ('train', ['--device', 'cpu:7'], ['--device=cpu:7', 'not a device']),
    ('train', ['--device='], ['--device=', 'not a device']),
    ('train', ['--device', 'meta'], ['--device=meta', 'not a device']),
    ('table', ['--devices', 'abc'], ['--devices=abc']),
    ('table', ['--devices', ',,'], ['--devices=,,']),
    ('table', ['--devices', '0,1'] if not torch.cuda.is_available() else ['--devices', '0,99'], ['--devices=cuda:']),
    ('table', ['--rows', 'random', 'random'], ['--rows', 'random', 'twice']),
    ('table', ['--rows', 'random', '--seeds', '0', '0'], ['--seeds', 'twice']),
    ('table', ['--rows'], ['--rows', 'at least one row']),
    ('table', ['--grid', 'table2', '--rows', 'random'], ['--grid=table2', '--rows random']),
    ('table', ['--jobs', '1000'], ['--jobs=1000']),
])
def test_accepted_nonsense_refused(tmp_path, cmd, args, says):
    bad_cli(cmd, *SMALL, '--out', tmp_path / 'r', *args, says=says)
    assert not (tmp_path / 'r').exists() or not any((tmp_path / 'r').iterdir())


def test_demo_bad_device(tmp_path):
    bad_cli('demo', '--quick', '--device', 'foo', '--out', tmp_path / 'd', says=['--device=foo'])
    assert not (tmp_path / 'd').exists()


@pytest.mark.parametrize('args,says', [
    (['--loss', 'simclr', '--n-negs', '5'], '--n-negs=5 does nothing with --loss=simclr'),
    (['--loss', 'simclr', '--grad-block', 'true'], '--grad-block=True does nothing with --loss=simclr'),
    (['--ll-epochs', '3'], '--ll-epochs=3 does nothing with --schedule=e2e'),
    (['--clapp-patch', '8'], '--clapp-patch=8 does nothing with --loss=hinge'),
    (['--crop-size', '32'], '--crop-size=32 does nothing with --views=affine'),
])
def test_options_that_do_nothing_are_warned_and_not_stored(tmp_path, args, says):
    TALLY['bad_inputs'] += 1
    rc, out, err = cli('train', *SMALL, '--epochs', '1', '--stop-after', '1', '--out', tmp_path, *args)
    assert rc == 0, err
    warn = [l for l in err.splitlines() if 'warning' in l]
    assert len(warn) == 1 and says in warn[0], err
    k = args[-2][2:].replace('-', '_')
    assert json.loads((tmp_path / 'config.json').read_text())[k] == getattr(get_config('tiny'), k)
    TALLY['clear'] += 1


def test_preset_in_a_config_file_is_honoured(tmp_path):
    (tmp_path / 'c.yaml').write_text('preset: digits\n')
    from bioss_nb.cli import parse_args
    a = parse_args(['train', '--config', str(tmp_path / 'c.yaml')])[1]
    assert (a['preset'], a['encoder'], a['to_rgb32']) == ('digits', 'conv6', True)
    assert parse_args(['train', '--config', str(tmp_path / 'c.yaml'), '--preset', 'tiny'])[1]['encoder'] == 'mnist'


# ---------------------------------------------------------------- messages that name what is wrong, where, and what to do
@pytest.mark.parametrize('content,says', [
    (b'lr: [1,\n', 'is not valid YAML or JSON'), (b'', 'is empty'), (b'\xc8\x00\xff' * 50, 'is not a text file'),
    (b'- 1\n- 2\n', 'holds a list, not a mapping'),
])
def test_bad_config_files(tmp_path, content, says):
    f = tmp_path / 'c.yaml'; f.write_bytes(content)
    bad_cli('train', *SMALL, '--config', f, '--out', tmp_path / 'r', says=[f'--config={f}', says])
    assert not (tmp_path / 'r').exists()


def test_data_root_that_is_a_file(tmp_path, monkeypatch):
    f = tmp_path / 'file'; f.write_text('x')
    bad_cli('download', 'mnist', '--root', f, says=[f"root='{f}'", 'is a file, not a folder'])
    monkeypatch.setenv('BIOSS_DATA', str(f))
    bad_cli('download', 'mnist', says=['$BIOSS_DATA=', 'is a file, not a folder'])


def test_full_disk_is_one_clear_line(tmp_path, monkeypatch):
    "torch reports a full disk as '[enforce fail at inline_container.cc] unexpected pos': the run says so, and keeps its checkpoint."
    fault()
    assert cli('train', *SMALL, '--epochs', '2', '--stop-after', '4', '--out', tmp_path)[0] == 0
    good = (tmp_path / 'checkpoint.pt').read_bytes()
    def full(*a, **k): raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')
    monkeypatch.setattr(torch, 'save', full)
    bad_cli('train', *SMALL, '--epochs', '2', '--out', tmp_path, says=['checkpoint.pt could not be written', 'the disk is full'])
    if (tmp_path / 'checkpoint.pt').read_bytes() != good: lost()
    assert TALLY['runs_lost'] == 0


def test_metrics_that_is_a_folder(tmp_path):
    fault()
    assert cli('train', *SMALL, '--epochs', '2', '--stop-after', '4', '--out', tmp_path)[0] == 0
    (tmp_path / 'metrics.jsonl').unlink(); (tmp_path / 'metrics.jsonl').mkdir()
    bad_cli('train', *SMALL, '--epochs', '2', '--out', tmp_path, says=['metrics.jsonl could not be written', 'folder'])


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes read-only files')
def test_read_only_metrics(tmp_path):
    fault()
    assert cli('train', *SMALL, '--epochs', '2', '--stop-after', '4', '--out', tmp_path)[0] == 0
    (tmp_path / 'metrics.jsonl').chmod(0o444)
    try: bad_cli('train', *SMALL, '--epochs', '2', '--out', tmp_path, says=['metrics.jsonl could not be written', 'ermission'])
    finally: (tmp_path / 'metrics.jsonl').chmod(0o644)


def test_bad_library_calls_24():
    from bioss_nb.losses import ContrastiveHinge, SimCLR
    from bioss_nb.evaluate import linear_probe
    bad_call(lambda: ContrastiveHinge(grad_block='no'), "grad_block='no'")
    bad_call(lambda: ContrastiveHinge()(torch.zeros(4, 0), torch.zeros(4, 0)), 'width D=0')
    bad_call(lambda: SimCLR()(torch.full((4, 3), 3e38), -torch.full((4, 3), 3e38)), 'overflow')
    f, y = torch.randn(20, 4), torch.arange(20) % 2
    bad_call(lambda: linear_probe(f * float('nan'), y, {}), 'train', 'NaN')
    bad_call(lambda: linear_probe(f, y, {}, epochs=0), 'epochs=0')
    bad_call(lambda: get_config(perturb_rot=float('nan')), 'perturb_rot=nan')
    bad_call(lambda: get_config(perturb_scale=-1.), 'perturb_scale=-1.0')


def test_zz_summary():
    "The tally, printed as the suite's last line (and written where $BIOSS_FAULTS_SUMMARY says)."
    t = TALLY
    line = (f"fault suite: {t['bad_inputs']} bad inputs tried, {t['clear']} clear errors, {t['tracebacks']} tracebacks; "
            f"{t['faults']} faults injected, {t['runs_lost']} runs lost")
    print('\n' + line)
    if os.environ.get('BIOSS_FAULTS_SUMMARY'): Path(os.environ['BIOSS_FAULTS_SUMMARY']).write_text(json.dumps(dict(t, line=line)))
    assert t['tracebacks'] == 0 and t['runs_lost'] == 0
