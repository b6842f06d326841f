"STL10, VGG6 and CLAPP through the engine and the grid: the stl10-tiny preset on generated colour shapes (no downloads)."
import json, tempfile
from pathlib import Path
import torch
import fastcore.test as ft
from bioss_nb.train import get_config, Trainer, train, build_networks, encoder_kwargs
from bioss_nb.clapp import CLAPP
from bioss_nb.cli import GRIDS, ROWS, main, row_config

def test_engine_runs_stl10_and_clapp():
    small = dict(n_train=40, batch_size=20, epochs=1, ll_epochs=1, progress=False)
    with tempfile.TemporaryDirectory() as d:
        for over in (dict(), dict(schedule='gll', rule='urf'), dict(loss='clapp', batch_size=4, n_train=8),
                     dict(loss='clapp', schedule='gll', batch_size=4, n_train=8)):
            cfg = get_config('stl10-tiny', out=str(Path(d) / str(len(over))), **{**small, **over})
            tr = Trainer(cfg)
            enc0 = {k: v.clone() for k, v in tr.encoder.state_dict().items()}
            tr.fit(stop_after=2)
            moved = [k for k, v in tr.encoder.state_dict().items() if not torch.equal(v, enc0[k])]
            assert moved, over                                             # a step changed the encoder
            if cfg.schedule == 'gll': assert all(k.startswith('layers.0.') for k in moved), moved   # only block 0 in stage 0
            if cfg.loss == 'clapp':
                assert isinstance(tr.heads[0], CLAPP) and tr.encoder.in_shape == (1, 64, 64)
                assert any(p is tr.heads[0].W[0].weight for g in tr.opts[0].param_groups for p in g['params'])  # predictors learn
        # CLAPP resumes exactly: its negatives come from the saved deformation generator
        cfg = get_config('stl10-tiny', out=str(Path(d) / 'r'), loss='clapp', **{**small, 'batch_size': 4, 'n_train': 16})
        a = train(cfg.replace(out=str(Path(d) / 'a')), resume=False)
        train(cfg, resume=False, stop_after=2); b = train(cfg, resume=True)
        for k, v in a.encoder.state_dict().items(): ft.test_eq(b.encoder.state_dict()[k], v)
    ft.test_fail(lambda: get_config('stl10-tiny', views='affine'), contains="use views='crops'")
    ft.test_fail(lambda: get_config('stl10-tiny', encoder='conv6'), contains="use encoder='vgg6'")
    ft.test_fail(lambda: get_config('tiny', views='crops'), contains="gray digits")
    ft.test_fail(lambda: get_config('stl10-tiny', loss='clapp', clapp_patch=12), contains='clapp_patch=12')
    ft.test_fail(lambda: get_config('stl10-tiny', loss='clapp', rule='dtp'), contains="no DTP version")
    ft.test_fail(lambda: get_config('paper-cifar', loss='clapp', clapp_patch=4), contains='clapp_patch=4')
    ft.test_eq(encoder_kwargs(get_config('stl10-tiny', loss='clapp')), dict(in_shape=(1, 64, 64), patch=16))
    ft.test_eq(build_networks(get_config('paper-cifar', loss='clapp', clapp_patch=8))[0].in_sizes, ((32, 32), (8, 8)))
    ft.test_eq(build_networks(get_config('paper-stl10'))[1][0][-1].in_features, 4096)   # VGG6's head: AvgPool 2, then 1024x2x2

def test_table2_grid_and_clapp_rows():
    ft.test_eq([(r.key, r.paper) for r in GRIDS['table2']],
            [('t2-hinge5gb-e2e-bp', 70.13), ('t2-hinge5gb-e2e-rf', 55.01), ('t2-hinge5gb-gll-bp', 68.26), ('t2-hinge5gb-gll-urf', 68.80),
             ('t2-hinge5gb-gll-rf', 60.00), ('t2-hinge5gb-rll-bp', 64.61), ('t2-hinge5gb-rll-rf', 55.14),
             ('t2-clapp-e2e-bp', 71.88), ('t2-clapp-gll', 68.74), ('t2-random', 46.78)])
    ft.test_eq([(ROWS[k].paper, ROWS[k].overrides['schedule']) for k in ('clapp-e2e-bp', 'clapp-gll')], [(69.05, 'e2e'), (68.93, 'gll')])
    for preset in ('paper-stl10', 'stl10-tiny'):                      # every row validates under both STL10 presets
        for r in GRIDS['table2']: row_config(r, get_config(preset), preset)
    ft.test_eq(row_config(ROWS['t2-clapp-gll'], get_config('paper-stl10'), 'paper-stl10').batch_size, 16)
    for preset in ('paper-cifar', 'digits'): row_config(ROWS['clapp-e2e-bp'], get_config(preset), preset)
    with tempfile.TemporaryDirectory() as d:
        rc = main(['table', '--grid', 'table2', '--preset', 'stl10-tiny', '--seeds', '0', '--out', d, '--progress', 'false',
                   '--rows', 't2-hinge5gb-e2e-bp', 't2-clapp-gll', 't2-random', '--epochs', '1', '--ll-epochs', '1', '--n-train', '200',
                   '--probe-epochs', '20'])
        ft.test_eq(rc, 0)
        md = (Path(d) / 'table.md').read_text()
        assert 'paper, STL10 (%)' in md and '71.88' not in md and '68.74' in md and '46.78' in md, md
        res = [json.loads(l) for l in (Path(d) / 'results.jsonl').read_text().splitlines()]
        assert all('error' not in r and 0 <= r['clean'] <= 1 for r in res), res
