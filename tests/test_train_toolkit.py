"""The training toolkit (galbench.train): early stopping, history, learning-rate schedules,
augmentation conventions, the Gaussian-noise layer, partial fine-tuning and grid search.
Tiny tensors and models only; every check is on values."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from galbench.train import (  # noqa: E402
    Augment,
    AugmentParams,
    EarlyStopping,
    GaussianNoise,
    History,
    block_groups,
    default_refinement,
    exponential_decay,
    freeze_batchnorm,
    grid_search,
    inverse_decay,
    scheduler,
    set_trainable,
    step_decay,
)

# -- early stopping ----------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_keeps_best_state():
    stopper = EarlyStopping(patience=3)
    weights = torch.zeros(2)
    losses = [1.0, 0.5, 0.6, 0.55, 0.7, 0.4]
    stops = []
    for epoch, loss in enumerate(losses, start=1):
        weights += 1  # the "training" changes the weights in place every epoch
        stops.append(stopper.step(loss, {"w": weights}))
        if stops[-1]:
            break
    # best 0.5 at epoch 2; epochs 3, 4, 5 do not improve -> stop at 5, never reaching 0.4
    assert stops == [False, False, False, False, True]
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (0.5, 2, 5)
    assert torch.equal(stopper.best_state["w"], torch.tensor([2.0, 2.0]))  # a copy, not a view
    assert stopper.best_state["w"].device.type == "cpu"


def test_early_stopping_min_delta_mode_max_and_nan():
    stopper = EarlyStopping(patience=2, min_delta=0.1, mode="max")
    assert not stopper.step(0.50)  # first finite value improves
    assert not stopper.step(0.55)  # +0.05 is not more than min_delta
    assert stopper.step(0.60)  # +0.10 is not *more* than min_delta either: second stale epoch
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (0.5, 1, 3)

    nan = EarlyStopping(patience=2)
    assert not nan.step(float("nan"))
    assert nan.best == math.inf and nan.best_epoch == 0
    assert not nan.step(torch.tensor(1.0))  # a 0-d tensor is accepted; improves on inf
    assert not nan.step(float("nan"))
    assert nan.step(float("nan"))
    assert (nan.best, nan.best_epoch, nan.stopped_epoch) == (1.0, 2, 4)


def test_early_stopping_state_dict_round_trip():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    stopper = EarlyStopping(patience=1)
    stopper.step(1.0, model.state_dict())
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert stopper.step(2.0, model.state_dict())
    model.load_state_dict(stopper.best_state)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 2, "min_delta": -1},
                                    {"patience": 2, "mode": "lowest"}])
def test_early_stopping_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


# -- history -----------------------------------------------------------------------------------


def _history(accuracy: bool = True) -> History:
    h = History()
    for epoch, (tl, vl) in enumerate([(0.9, 1.0), (0.6, 0.7), (0.4, 0.75)], start=1):
        row = {"epoch": epoch, "train_loss": tl, "val_loss": vl}
        if accuracy:
            row |= {"train_accuracy": 1 - tl / 2, "val_accuracy": 1 - vl / 2}
        h.log(**row, lr=torch.tensor(1e-3 / epoch, dtype=torch.float64))
    return h


def test_history_json_round_trip_and_format(tmp_path):
    h = _history()
    h.log(epoch=4, val_loss=float("nan"), train_loss=0.3, extra={"auroc": 0.9})
    path = h.save_json(tmp_path / "sub" / "history.json")
    text = path.read_text()
    assert text.endswith("]\n") and text.startswith("[\n  {\n    \"epoch\": 1,")
    rows = json.loads(text)  # strict JSON: NaN became null
    assert rows[3] == {"epoch": 4, "train_loss": 0.3, "val_loss": None, "extra": {"auroc": 0.9}}
    # one key order for every row: first appearance (train_loss before val_loss in row 4 too)
    assert list(rows[3]) == ["epoch", "train_loss", "val_loss", "extra"]
    assert rows[0]["lr"] == pytest.approx(1e-3) and isinstance(rows[0]["lr"], float)
    loaded = History.load(path)
    assert loaded.rows == rows and loaded.to_json() == text
    assert h.column("val_accuracy")[3] is None


def test_history_plot_is_deterministic_and_leaves_matplotlib_alone(tmp_path):
    import matplotlib
    from PIL import Image

    before = (matplotlib.get_backend(), dict(matplotlib.rcParams))
    a = _history().plot(tmp_path / "a.png")
    b = _history().plot(tmp_path / "b.png")
    assert a.read_bytes() == b.read_bytes()
    assert Image.open(a).size == (900, 350)
    assert b"Software" not in a.read_bytes()
    # without accuracy columns the second panel says so; the image differs but keeps its size
    c = _history(accuracy=False).plot(tmp_path / "c.png")
    assert Image.open(c).size == (900, 350) and c.read_bytes() != a.read_bytes()
    assert (matplotlib.get_backend(), dict(matplotlib.rcParams)) == before
    with pytest.raises(ValueError, match="empty"):
        History().plot(tmp_path / "d.png")


# -- schedules ---------------------------------------------------------------------------------


def test_schedules_documented_values():
    assert [step_decay(0.1, e, drop=0.5, every=10) for e in (0, 9, 10, 19, 20, 35)] == [
        0.1, 0.1, 0.05, 0.05, 0.025, 0.0125,
    ]
    assert step_decay(1.0, 4, drop=0.1, every=2) == pytest.approx(0.01)
    assert exponential_decay(0.1, 0, rate=0.9) == 0.1
    assert exponential_decay(0.1, 3, rate=0.9) == pytest.approx(0.1 * 0.729)
    assert inverse_decay(0.1, 0, rate=0.5) == 0.1
    assert inverse_decay(0.1, 2, rate=0.5) == pytest.approx(0.05)  # halved at epoch 1 / rate
    assert inverse_decay(0.1, 6, rate=0.5) == pytest.approx(0.025)
    with pytest.raises(ValueError):
        step_decay(0.1, -1)
    with pytest.raises(ValueError):
        exponential_decay(0.1, 1, rate=1.5)


@pytest.mark.parametrize(
    "kind, function, kwargs",
    [
        ("step", step_decay, {"drop": 0.5, "every": 4}),
        ("exponential", exponential_decay, {"rate": 0.8}),
        ("inverse", inverse_decay, {"rate": 0.25}),
    ],
)
def test_torch_scheduler_matches_the_functions(kind, function, kwargs):
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD([{"params": params, "lr": 0.1}, {"params": [], "lr": 0.02}])
    sched = scheduler(optimizer, kind, **kwargs)
    for epoch in range(12):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(function(0.1, epoch, **kwargs))
        assert optimizer.param_groups[1]["lr"] == pytest.approx(function(0.02, epoch, **kwargs))
        optimizer.step()
        sched.step()


def test_plateau_and_cosine_schedulers():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    plateau = scheduler(opt, "plateau", factor=0.5, patience=1)
    for loss in (1.0, 1.0, 1.0):
        opt.step()
        plateau.step(loss)
    assert opt.param_groups[0]["lr"] == 0.5  # two stale epochs with patience 1
    opt = torch.optim.SGD([p], lr=1.0)
    cosine = scheduler(opt, "cosine", epochs=4)
    for _ in range(2):
        opt.step()
        cosine.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # (1 + cos(pi / 2)) / 2
    with pytest.raises(ValueError, match="unknown schedule"):
        scheduler(opt, "linear")


# -- augmentation ------------------------------------------------------------------------------


def _gaussian(size: int = 33, sigma_x: float = 2.0, sigma_y: float = 2.0, pa_deg: float = 0.0,
              dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    """A unit-flux elliptical Gaussian ``[1, 1, size, size]`` (float64), major axis at
    ``pa_deg`` counter-clockwise from +x, centred at offset (dx, dy) from the stamp centre."""
    c = (size - 1) / 2
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64) - c - dy,
                          torch.arange(size, dtype=torch.float64) - c - dx, indexing="ij")
    a = math.radians(pa_deg)
    u = x * math.cos(a) + y * math.sin(a)
    v = -x * math.sin(a) + y * math.cos(a)
    img = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (img / img.sum())[None, None]


def _moments(img: torch.Tensor) -> tuple[float, float, float, float, float]:
    """Flux, centroid offsets (x, y) from the stamp centre, second moment r^2 and axis angle."""
    img = img[0, 0].double()
    h, w = img.shape
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                          torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing="ij")
    f = img.sum()
    mx, my = (img * x).sum() / f, (img * y).sum() / f
    qxx = (img * (x - mx) ** 2).sum() / f
    qyy = (img * (y - my) ** 2).sum() / f
    qxy = (img * (x - mx) * (y - my)).sum() / f
    angle = 0.5 * math.degrees(math.atan2(2 * qxy, qxx - qyy)) % 180
    return float(f), float(mx), float(my), float(qxx + qyy), angle


def test_d4_is_an_exact_permutation_with_the_documented_direction():
    g = torch.Generator().manual_seed(0)
    # integer values, so that sums do not depend on the summation order and compare exactly
    images = torch.randint(0, 1000, (64, 2, 7, 7), generator=g).float()
    aug = Augment(rotate="d4", flip=True, generator=torch.Generator().manual_seed(1))
    out, params = aug(images, return_params=True)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.equal(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))
    for i in range(len(images)):
        assert torch.equal(out[i].flatten().sort().values, images[i].flatten().sort().values)
    assert len({(bool(f), float(a)) for f, a in zip(params.flip, params.angle_deg)}) == 8

    # a single bright pixel at +x of the centre goes to +y (counter-clockwise, origin-lower)
    dot = torch.zeros(1, 1, 7, 7)
    dot[0, 0, 3, 5] = 1.0
    turned = aug.apply(dot, AugmentParams.make(1, angle_deg=90.0))
    assert turned[0, 0, 5, 3] == 1.0 and turned.sum() == 1.0
    flipped = aug.apply(dot, AugmentParams.make(1, flip=True))
    assert flipped[0, 0, 3, 1] == 1.0  # x -> -x
    assert not torch.equal(turned, dot)  # the input is never modified in place
    assert dot[0, 0, 3, 5] == 1.0


def test_resampled_rotation_matches_rot90_and_direction():
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    smooth = Augment(rotate=True, generator=torch.Generator().manual_seed(0))
    exact = Augment(rotate="d4", generator=torch.Generator().manual_seed(0))
    for quarter in (1, 2, 3):
        params = AugmentParams.make(3, angle_deg=90.0 * quarter)
        torch.testing.assert_close(smooth.apply(images, params), exact.apply(images, params),
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(exact.apply(images, params),
                                   torch.rot90(images, quarter, dims=(-1, -2)), atol=0, rtol=0)
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 7] = 1.0  # +x, 3 px from the centre
    out = smooth.apply(dot, AugmentParams.make(1, angle_deg=90.0))
    assert out[0, 0, 7, 4] == pytest.approx(1.0, abs=1e-5)  # now at +y


def test_rotation_and_flip_transform_the_position_angle_as_documented():
    img = _gaussian(sigma_x=4.0, sigma_y=1.5, pa_deg=20.0)
    aug = Augment(rotate=True, flip=True, generator=torch.Generator().manual_seed(3))
    for _ in range(4):
        out, params = aug(img, return_params=True)
        flux, _, _, _, angle = _moments(out)
        expected = float(params.transform_angles(torch.tensor([20.0]))[0])
        diff = (angle - expected + 90) % 180 - 90
        assert abs(diff) < 0.5, (params, angle, expected)
        assert flux == pytest.approx(1.0, rel=5e-3)  # bilinear resampling: not exact


@pytest.mark.parametrize("s", [0.7, 1.5])
def test_zoom_preserves_flux_and_scales_the_second_moment(s):
    img = _gaussian(size=49, sigma_x=4.0, sigma_y=4.0)
    aug = Augment(zoom=(s, s), generator=torch.Generator().manual_seed(0))
    out, params = aug(img, return_params=True)
    assert float(params.zoom[0]) == pytest.approx(s)
    f0, _, _, r2_0, _ = _moments(img)
    f1, x1, y1, r2_1, _ = _moments(out)
    assert f1 == pytest.approx(f0, rel=0.01)
    # bilinear interpolation adds a little width (1/6 px^2 per axis: +1% at sigma = 4 px)
    assert r2_1 / r2_0 == pytest.approx(s**2, rel=0.02)
    assert abs(x1) < 1e-6 and abs(y1) < 1e-6  # zoom is about the stamp centre


def test_shift_moves_the_centroid():
    img = _gaussian(size=31, sigma_x=2.0, sigma_y=2.0)
    aug = Augment(max_shift_px=3.0, generator=torch.Generator().manual_seed(5))
    batch = img.repeat(4, 1, 1, 1)
    out, params = aug(batch, return_params=True)
    for i in range(4):
        _, x, y, _, _ = _moments(out[i : i + 1])
        dx, dy = params.shift_px[i].tolist()
        assert abs(dx) <= 3 and abs(dy) <= 3
        assert (x, y) == (pytest.approx(dx, abs=1e-3), pytest.approx(dy, abs=1e-3))
    moved = params.transform_offsets(torch.zeros(4, 2))
    torch.testing.assert_close(moved, params.shift_px)

    whole = Augment(max_shift_px=3.0, integer_shift=True,
                    generator=torch.Generator().manual_seed(5))
    out, params = whole(batch, return_params=True)
    for i in range(4):
        dx, dy = (int(v) for v in params.shift_px[i])
        padded = torch.nn.functional.pad(batch[i], (3, 3, 3, 3))  # zeros come in
        expected = padded[..., 3 - dy : 3 - dy + 31, 3 - dx : 3 - dx + 31]
        assert torch.equal(out[i], expected)  # exact, no interpolation
    # +y is the row index: a whole shift (0, 2) moves the centroid up two rows
    params = AugmentParams.make(1, shift_px=(0.0, 2.0))
    _, x, y, _, _ = _moments(whole.apply(img, params))
    assert (x, y) == (pytest.approx(0.0, abs=1e-9), pytest.approx(2.0, abs=1e-6))


def test_augment_is_deterministic_with_the_generator_seed():
    images = torch.rand(5, 1, 12, 12, generator=torch.Generator().manual_seed(0))

    def run(seed: int) -> torch.Tensor:
        aug = Augment(rotate=True, flip=True, max_shift_px=1.5, zoom=(0.8, 1.25),
                      generator=torch.Generator().manual_seed(seed))
        return torch.cat([aug(images), aug(images)])

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    with pytest.raises(TypeError, match="Generator"):
        Augment(rotate=True, generator=None)
    with pytest.raises(ValueError, match="d4"):
        Augment(rotate="d4", generator=torch.Generator()).apply(
            images, AugmentParams.make(5, angle_deg=45.0))


# -- Gaussian-noise layer ----------------------------------------------------------------------


def test_gaussian_noise_train_and_eval():
    layer = GaussianNoise(0.5, generator=torch.Generator().manual_seed(0))
    x = torch.full((200, 1, 10, 10), 3.0)
    noisy = layer.train()(x)
    assert noisy.shape == x.shape and not torch.equal(noisy, x)
    residual = noisy - x
    assert float(residual.std()) == pytest.approx(0.5, rel=0.02)
    assert abs(float(residual.mean())) < 0.01
    assert layer.eval()(x) is x
    with torch.random.fork_rng():  # the default path draws from torch's global generator
        torch.manual_seed(0)
        default_rng = GaussianNoise(0.1).train()
        assert float((default_rng(x) - x).std()) == pytest.approx(0.1, rel=0.05)


# -- fine-tuning -------------------------------------------------------------------------------


def _numel(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_set_trainable_resnet18():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=6, in_chans=1)
    total = _numel(model)
    assert set_trainable(model, "head") == 512 * 6 + 6
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    assert set_trainable(model, "last_k", k=1) == 512 * 6 + 6 + _numel(model.layer4)
    assert set_trainable(model, "last_k", k=2) == 512 * 6 + 6 + _numel(model.layer3, model.layer4)
    assert set_trainable(model, "last_k", k=4) == total - _numel(model.conv1, model.bn1)
    with pytest.raises(ValueError, match="4 blocks"):
        set_trainable(model, "last_k", k=5)
    assert set_trainable(model, "all") == total

    # BatchNorm in the frozen part: eval mode, running statistics untouched by a training pass
    set_trainable(model, "last_k", k=1)
    model.train()
    n_bn_frozen = freeze_batchnorm(model)
    bn_total = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    bn_layer4 = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.layer4.modules())
    assert n_bn_frozen == bn_total - bn_layer4
    before_frozen = model.layer1[0].bn1.running_mean.clone()
    before_trained = model.layer4[0].bn1.running_mean.clone()
    model(torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(model.layer1[0].bn1.running_mean, before_frozen)
    assert not torch.equal(model.layer4[0].bn1.running_mean, before_trained)
    assert not model.layer1[0].bn1.training and model.layer4[0].bn1.training


def test_set_trainable_mobilenetv3():
    timm = pytest.importorskip("timm")
    model = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=6, in_chans=1)
    head = _numel(model.classifier)
    assert head == model.classifier.in_features * 6 + 6
    assert set_trainable(model, "head") == head
    stem, blocks, head_side = block_groups(model)
    assert len(blocks) == len(model.blocks) == 6
    assert stem == ["conv_stem.weight", "bn1.weight", "bn1.bias"]
    # the head side: conv_head between the last stage and the classifier, and the classifier
    head_side_n = _numel(model.conv_head, model.norm_head, model.classifier)
    assert set_trainable(model, "last_k", k=0) == head_side_n
    last_two = _numel(model.blocks[4], model.blocks[5])
    assert set_trainable(model, "last_k", k=2) == head_side_n + last_two
    assert set_trainable(model, "all") == _numel(model)


# -- grid search -------------------------------------------------------------------------------


def test_grid_search_coarse_then_fine_improves_on_a_smooth_peak():
    calls = []

    def score(p: dict) -> float:
        calls.append(dict(p))
        # peak at lr = 3e-3, width = 48; the optimiser choice matters a little
        bonus = 0.1 if p["optimizer"] == "adamw" else 0.0
        return -(math.log10(p["lr"] / 3e-3)) ** 2 - (math.log2(p["width"] / 48)) ** 2 + bonus

    grid = {"lr": [1e-4, 1e-3, 1e-2], "width": [16, 32, 64], "optimizer": ["sgd", "adamw"]}
    result = grid_search(score, grid)
    coarse = [t for t in result.trials if t.stage == "coarse"]
    fine = [t for t in result.trials if t.stage == "fine"]
    assert len(coarse) == 3 * 3 * 2 and len(fine) == 3**2 - 1  # strings are not refined
    assert [t.params for t in result.trials] == calls  # evaluation order, each point once
    assert coarse[0].params == {"lr": 1e-4, "width": 16, "optimizer": "sgd"}  # product order
    coarse_best = max(coarse, key=lambda t: t.score)
    assert coarse_best.params == {"lr": 1e-3, "width": 64, "optimizer": "adamw"}
    assert result.best_score > coarse_best.score
    assert result.best_params["lr"] == pytest.approx(math.sqrt(1e-3 * 1e-2))
    assert result.best_params["width"] == 45  # round(sqrt(32 * 64)) = round(45.25)
    assert result.best_params["optimizer"] == "adamw"
    assert result.best_score == max(t.score for t in result.trials)


def test_grid_search_refinement_rules_and_min_direction():
    assert default_refinement(1e-3, [1e-4, 1e-3, 1e-2]) == pytest.approx(
        [math.sqrt(1e-7), 1e-3, math.sqrt(1e-5)])
    # at the edge the missing neighbour is mirrored: half a coarse step beyond the range
    assert default_refinement(1e-2, [1e-4, 1e-3, 1e-2]) == pytest.approx(
        [math.sqrt(1e-5), 1e-2, math.sqrt(1e-2 * 1e-1)])
    assert default_refinement(0.0, [0.0, 0.5]) == [-0.25, 0.0, 0.25]  # arithmetic across 0
    assert default_refinement(2, [1, 2, 4]) == [2, 3]  # sqrt(2) rounds back to 1: dropped
    assert default_refinement("sgd", ["sgd", "adam"]) == ["sgd"]
    assert default_refinement(True, [True, False]) == [True]
    assert default_refinement(0.1, [0.1]) == [0.1]

    # custom refinement, minimisation, skipping points the coarse stage already evaluated
    result = grid_search(
        lambda p: (p["x"] - 2.2) ** 2,
        {"x": [0, 1, 2, 3]},
        direction="min",
        refine={"x": lambda best: [best - 1, best - 0.5, best, best + 0.2, best + 0.5]},
    )
    fine = [t.params["x"] for t in result.trials if t.stage == "fine"]
    assert fine == [1.5, 2.2, 2.5]  # best - 1 = 1 and best = 2 were coarse points
    assert result.best_params == {"x": 2.2} and result.best_score == pytest.approx(0.0)
    assert result.n_coarse == 4 and result.n_fine == 3

    nan_first = grid_search(lambda p: math.nan if p["x"] == 0 else -p["x"], {"x": [0, 1, 2]},
                            refine={"x": lambda b: [b]})
    assert nan_first.best_params == {"x": 1}
    with pytest.raises(ValueError, match="not in the grid"):
        grid_search(lambda p: 0.0, {"x": [1]}, refine={"y": lambda b: [b]})


def test_galbench_does_not_import_the_toolkit():
    import subprocess
    import sys

    code = "import sys, galbench; print('galbench.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"
