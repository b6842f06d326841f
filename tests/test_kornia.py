"""kornia as the test oracle of the batched deformations and crops: given the same sampled parameters (the same affine
matrices, saturation factors, hue shifts, jitter factors and order, crop boxes), the package and kornia's functional ops
give the same images, up to float rounding. kornia comes with the `bench` extra (part of `dev`); without it these skip."""
import math
import pytest
import torch
kornia = pytest.importorskip('kornia')
from kornia.enhance import (adjust_brightness_accumulative, adjust_contrast_with_mean_subtraction, adjust_hue,
                            adjust_saturation, adjust_saturation_with_gray_subtraction)
from kornia.geometry.transform import crop_and_resize, hflip as k_hflip, warp_affine
from bioss_nb.deform import colour, hflip, perturb, random_theta, warp
from bioss_nb.crops import color_jitter, crop_boxes, resized_crop

TOL = dict(atol=1e-4, rtol=0)          # bilinear weights and HSV round trips in float32


def theta_to_pixels(theta, H, W):
    "kornia's matrix M (input pixel -> output pixel) of `warp`'s theta (output -> input, normalised, align_corners=True)."
    N = torch.tensor([[2 / (W - 1), 0, -1], [0, 2 / (H - 1), -1], [0, 0, 1.]], dtype=theta.dtype)
    T = torch.cat([theta, torch.tensor([0, 0, 1.], dtype=theta.dtype).expand(len(theta), 1, 3)], 1)
    return torch.linalg.inv(torch.linalg.inv(N) @ T @ N)[:, :2]


@pytest.mark.parametrize('shape', [(16, 3, 32, 32), (8, 1, 28, 20)])
def test_warp_is_kornias_warp_affine(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    th = random_theta(len(x), p=0.5, generator=g)
    ours = warp(x, th)
    assert (ours - x).abs().max() > 0.1                               # the maps do move the images
    ref = warp_affine(x, theta_to_pixels(th, *shape[2:]), shape[2:], mode='bilinear', padding_mode='zeros', align_corners=True)
    torch.testing.assert_close(ours, ref, **TOL)


def test_perturb_is_kornias_warp_affine():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 32, 32, generator=g)
    out, th = perturb(x, generator=g, return_theta=True)
    torch.testing.assert_close(out, warp_affine(x, theta_to_pixels(th, 32, 32), (32, 32), align_corners=True), **TOL)


def test_colour_is_kornias_hsv_saturation_and_hue():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, 24, 24, generator=g)
    out, (fac, dh) = colour(x, s=4., h=0.2, generator=g, return_params=True)
    assert fac.min() < 0.7 and fac.max() > 1.4 and dh.abs().max() > 0.05   # strong factors both ways
    ref = adjust_hue(adjust_saturation(x, fac), dh * 2 * math.pi)           # kornia's hue is in radians
    torch.testing.assert_close(out, ref, **TOL)


def test_hflip_is_kornias():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(32, 3, 8, 8, generator=g)
    out, m = hflip(x, generator=g, return_mask=True)
    assert 0 < m.sum() < len(m)
    torch.testing.assert_close(out, torch.where(m.view(-1, 1, 1, 1), k_hflip(x), x), atol=0, rtol=0)


_KORNIA_JITTER = (adjust_brightness_accumulative, adjust_contrast_with_mean_subtraction,
                  adjust_saturation_with_gray_subtraction, lambda x, f: adjust_hue(x, f * 2 * math.pi))

def test_color_jitter_is_kornias_colorjitter_steps():
    "Each image jittered by kornia's ColorJitter steps (torchvision's conventions) with our factors, in our order."
    g = torch.Generator().manual_seed(4)
    x = torch.rand(24, 3, 16, 16, generator=g)
    out, (f, order, applied) = color_jitter(x, (0.8, 0.8, 0.8, 0.2), p=0.8, generator=g, return_params=True)
    assert 0 < applied.sum() < len(x) and len({tuple(o.tolist()) for o in order}) > 1
    ref = []
    for i in range(len(x)):
        xi = x[i:i + 1]
        if applied[i]:
            for op in order[i].tolist(): xi = _KORNIA_JITTER[op](xi, f[i:i + 1, op]).clamp(0, 1)
        ref.append(xi)
    torch.testing.assert_close(out, torch.cat(ref), atol=5e-4, rtol=0)   # kornia's gray weighs red 0.299, ours 0.2989


def _corners(boxes, size):
    "kornia's box corners (N, 4, 2) whose align_corners=True grid hits the pixel-centred samples of `resized_crop`."
    s = boxes[:, 2:] / size
    lo, hi = boxes[:, :2] - 0.5 + 0.5 * s, boxes[:, :2] - 0.5 + (size - 0.5) * s
    return torch.stack([lo, torch.stack([hi[:, 0], lo[:, 1]], 1), hi, torch.stack([lo[:, 0], hi[:, 1]], 1)], 1)


def test_resized_crop_is_kornias_crop_and_resize():
    "Boxes no larger than the output (one bilinear sample per pixel): kornia's crop_and_resize, border-clamped as roi_align."
    g = torch.Generator().manual_seed(5)
    x = torch.rand(16, 3, 96, 96, generator=g)
    boxes = crop_boxes(64, 96, 96, scale=(0.02, 0.4), generator=g)
    boxes = torch.cat([boxes[(boxes[:, 2:] <= 64).all(1)][:14],
                       torch.tensor([[0., 0., 40., 30.], [46., 76., 50., 20.]])])     # boxes at both corners of the image
    assert len(boxes) == 16 and len(set(boxes[:, 2].tolist())) > 8
    ours = resized_crop(x, boxes, 64)
    ref = crop_and_resize(x, _corners(boxes, 64), (64, 64), mode='bilinear', padding_mode='border', align_corners=True)
    torch.testing.assert_close(ours, ref, **TOL)


def test_the_benchmark_cases_run():
    "The benchmark's kornia cases (bench/run.py), on a few images: both sides run and give images of the same shape."
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location('bench_run', Path(__file__).resolve().parents[1] / 'bench' / 'run.py')
    run = importlib.util.module_from_spec(spec); spec.loader.exec_module(run)
    for case in run.KORNIA_CASES:
        fns = run.SETUPS[case](torch.device('cpu'), B=4)
        base, ours = fns['baseline'](), fns['ours']()
        assert base.shape == ours.shape and base.shape[0] == 4, (case, base.shape, ours.shape)
