"""Beyond one machine, on one CPU: a grid's rows as submitit jobs (its local executor: real processes, no SLURM), a job
killed mid-row and the grid resubmitted, two `table` processes sharing one grid folder, and one run started by torchrun
with the rendezvous options a multi-node run uses. Small `tiny` runs; CPU only; no downloads."""
import collections, json, os, re, signal, socket, subprocess, sys, time, uuid
from pathlib import Path
import pytest
import torch
from bioss_nb.cli import main

submitit = pytest.importorskip('submitit')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
SMALL = ['--preset', 'tiny', '--n-train', '400', '--batch-size', '100', '--probe-epochs', '2', '--n-probe', '500',
         '--progress', 'false', '--device', 'cpu']


def table(*args, **kw):
    "`python -m bioss_nb table ...` as a process of its own."
    return subprocess.Popen([sys.executable, '-m', 'bioss_nb', 'table', *map(str, args)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def computed(output: str) -> list:
    "The rows a `table` process computed itself: the lines it prints when a row finishes in it."
    return re.findall(r'^\s+(\S+)\s+seed (\d+): clean', output, re.M)


def metrics(run):
    from bioss_nb.runs import read_metrics
    return read_metrics(run)                                                   # the epoch records


def test_grid_through_submitit_killed_job_resumes(tmp_path):
    """Two rows x one seed as submitit jobs. The hinge row's job is killed (SIGKILL) after its first checkpoint: the grid
    still writes its table, with that row failed. The same command again submits only the unfinished row, which resumes
    from its checkpoint; the finished row is not computed again."""
    out = tmp_path / 'grid'
    args = [*SMALL, '--rows', 'random', 'hinge-e2e-bp', '--seeds', '0', '--epochs', '20', '--out', out,
            '--launcher', 'submitit-local', '--array-parallelism', '2']
    run = out / 'hinge-e2e-bp' / 'seed0'
    p = table(*args)
    t0 = time.time()
    while not ((run / 'checkpoint.pt').exists() and (run / 'metrics.jsonl').exists()) and time.time() - t0 < 240: time.sleep(0.05)
    assert (run / 'checkpoint.pt').exists(), p.communicate()[0]
    job_pid = int((run / '.row.lock').read_text().split()[0])       # the job's process holds the row's lock
    os.kill(job_pid, signal.SIGKILL)
    first, _ = p.communicate(timeout=300)
    assert p.returncode == 0, first
    assert 'JobFailed' in first and 'hinge-e2e-bp' in first, first
    rows = {r['key']: r for r in map(json.loads, (out / 'results.jsonl').read_text().splitlines())}
    assert 'error' not in rows['random'] and 'JobFailed' in rows['hinge-e2e-bp']['error']
    assert 'failed: JobFailed' in (out / 'table.md').read_text()
    ck = torch.load(run / 'checkpoint.pt', weights_only=True)
    assert not ck['done'] and 0 < ck['pos']['step'] < 20 * 4              # killed mid-row, after a checkpoint
    kept = [r for r in metrics(run) if r['step'] <= ck['pos']['step']]
    random_res = out / 'random' / 'seed0' / 'result.json'
    stamp = random_res.stat().st_mtime_ns

    p = table(*args)                                                        # resubmitted: the same command
    second, _ = p.communicate(timeout=600)
    assert p.returncode == 0, second
    assert '2 runs, 1 to run' in second, second
    assert computed(second) == [('hinge-e2e-bp', '0')], second             # one job: the unfinished row
    assert random_res.stat().st_mtime_ns == stamp                           # the finished row was read back
    m = metrics(run)
    assert [r['epoch'] for r in m] == list(range(20))                       # every epoch once, none twice
    assert m[:len(kept)] == kept                                            # those before the kill kept, not recomputed
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['done']
    rows = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
    assert [r['key'] for r in rows] == ['random', 'hinge-e2e-bp'] and not any('error' in r for r in rows)
    assert 'failed' not in (out / 'table.md').read_text()


def test_two_table_processes_share_a_grid_folder(tmp_path):
    "Two `table` processes started on one folder take the rows between them: each row is computed exactly once, and the table is whole."
    out = tmp_path / 'grid'
    keys = ['random', 'hinge-e2e-bp', 'hinge-e2e-rf', 'hinge-gll-bp']
    args = [*SMALL, '--rows', *keys, '--seeds', '0', '--epochs', '3', '--out', out]
    ps = [table(*args), table(*args)]
    outs = [p.communicate(timeout=600)[0] for p in ps]
    for p, o in zip(ps, outs): assert p.returncode == 0, o
    runs = collections.Counter(k for o in outs for k, _ in computed(o))
    assert runs == collections.Counter(keys), outs                          # every row once, in one process or the other
    rows = [json.loads(l) for l in (out / 'results.jsonl').read_text().splitlines()]
    assert [r['key'] for r in rows] == keys and not any('error' in r for r in rows), rows
    md = (out / 'table.md').read_text()
    assert 'not finished' not in md and md.count('| Contr. Hinge |') == 3


def test_launcher_errors_are_one_line(tmp_path, capsys, monkeypatch):
    "Without submitit, or without SLURM, or with --jobs: one line saying what to do, before any row runs."
    base = ['table', *SMALL, '--rows', 'random', '--seeds', '0', '--out', str(tmp_path / 'g')]
    monkeypatch.setitem(sys.modules, 'submitit', None)                      # as if it were not installed
    assert main([*base, '--launcher', 'submitit-local']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'bioss_nb[cluster]'" in err[0], err
    monkeypatch.delitem(sys.modules, 'submitit')
    monkeypatch.setenv('PATH', str(tmp_path))                               # no sbatch on the PATH
    assert main([*base, '--launcher', 'submitit']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'no sbatch' in err[0] and 'submitit-local' in err[0], err
    assert main([*base, '--launcher', 'submitit-local', '--jobs', '2']) == 2
    assert '--jobs with --launcher submitit-local' in capsys.readouterr().err
    assert main([*base, '--launcher', 'submitit-local', '--timeout-min', '0']) == 2
    assert '--timeout-min=0' in capsys.readouterr().err
    assert main([*base, '--slurm-partition', 'gpu']) == 2                     # a SLURM option without a launcher
    assert '--slurm-partition=gpu' in capsys.readouterr().err
    assert not (tmp_path / 'g' / 'random').exists()


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_torchrun_with_rendezvous_options(tmp_path):
    """`torchrun --nnodes 1 --rdzv-backend c10d --rdzv-endpoint ... --rdzv-id ...`, the command a multi-node run starts on
    every node, running `bioss-nb train` in 2 gloo processes: it finishes, and its losses and weights are those of the same
    command in one process (the global batch is the same)."""
    train = ['train', '--preset', 'tiny', '--n-train', '400', '--batch-size', '100', '--epochs', '2', '--progress', 'false',
             '--device', 'cpu']
    one = subprocess.run([sys.executable, '-m', 'bioss_nb', *train, '--out', str(tmp_path / 'one')], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [str(Path(sys.executable).parent / 'torchrun'), '--nnodes', '1', '--nproc-per-node', '2',
                '--rdzv-backend', 'c10d', '--rdzv-endpoint', f'localhost:{free_port()}', '--rdzv-id', uuid.uuid4().hex[:8]]
    two = subprocess.run([*torchrun, '-m', 'bioss_nb', *train, '--out', str(tmp_path / 'two')], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (torch.load(tmp_path / n / 'checkpoint.pt', weights_only=True) for n in ('one', 'two'))
    assert a['done'] and b['done'] and a['pos'] == b['pos']
    la, lb = ([r['loss'] for r in metrics(tmp_path / n)] for n in ('one', 'two'))
    assert len(la) == 2 and lb == pytest.approx(la, rel=1e-4)
    for part in ('encoder', 'heads'):
        for k in a[part]: torch.testing.assert_close(a[part][k], b[part][k], rtol=1e-4, atol=1e-5, msg=f'{part}.{k}')


def test_slurm_job_array_settings(tmp_path, monkeypatch):
    """--launcher submitit's SLURM jobs carry the options given (partition, GPUs, CPUs, time limit, jobs at once) and
    submitit's time-limit signal; at that signal a row's job hands submitit itself with the same arguments to requeue, so
    its run resumes from its checkpoint. (`srun` and `sbatch` are stand-ins: the batch file is only written, not submitted.)"""
    from bioss_nb.experiments import _executor, _RowJob
    bin_ = tmp_path / 'bin'; bin_.mkdir()
    for tool in ('srun', 'sbatch'): (bin_ / tool).write_text('#!/bin/sh\nexit 0\n'); (bin_ / tool).chmod(0o755)
    monkeypatch.setenv('PATH', f"{bin_}:{os.environ['PATH']}")
    cluster = dict(partition='gpu', gpus_per_job=2, cpus_per_job=8, timeout_min=90, array_parallelism=3)
    ex, limit, threads = _executor('submitit', cluster, tmp_path / '.submitit', 10)
    assert (limit, threads) == (3, 8) and ex._executor.parameters['array_parallelism'] == 3
    text = ex._executor._make_submission_file_text('CMD', 'uid')
    for option in ('--partition=gpu', '--gpus-per-node=2', '--cpus-per-task=8', '--time=90', '--signal=USR2@'): assert option in text, text
    ex, limit, threads = _executor('submitit', dict(timeout_min=60), tmp_path / '.submitit', 10)
    assert limit == 10 and 'partition' not in ex._executor.parameters and ex._executor.parameters['gpus_per_node'] == 1
    again = _RowJob().checkpoint('random', 'BASE', 'OUT', 'tiny')
    assert isinstance(again, submitit.helpers.DelayedSubmission) and isinstance(again.function, _RowJob)
    assert again.args == ('random', 'BASE', 'OUT', 'tiny')
