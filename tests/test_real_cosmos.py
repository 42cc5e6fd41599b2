"""Real splits of the simulated tasks (tasks/_real_splits.toml): real HST COSMOS galaxies through
the tasks' instruments, fixed by committed id lists and the sha256 of their source files.

The source files come from the shared mirror (../shared/data, as $GALBENCH_MIRROR); nothing here
touches the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad

from galbench.data.build import build_split
from galbench.data.download import ChecksumError, DownloadError
from galbench.data.split import load_split
from galbench.errors import GalbenchError, TaskSpecError
from galbench.metrics.regression import bulge_disk_half_light_radius, sersic_b
from galbench.real.cosmos import intrinsic_half_light_radius_px
from galbench.tasks import attach_real_splits, get_task, parse_split

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(
    not (MIRROR / "SHA256SUMS").is_file(), reason=f"no shared data mirror at {MIRROR}"
)


@pytest.fixture
def mirror(monkeypatch):
    monkeypatch.setenv("GALBENCH_MIRROR", str(MIRROR))
    return MIRROR


# ----------------------------------------------------------------------------- definitions


def test_real_splits_attach_to_frozen_tasks_without_changing_them():
    for task_id in ("deblending@1", "morphometry@1"):
        spec = get_task(task_id)
        real = spec.split("real_cosmos")
        assert real.real and not spec.split("test").real
        assert len(real.ids) == 100 and len(set(real.ids)) == 100
        assert all(key.startswith("cosmos_hst/") for key in real.sources)
        # The task file's own hash is untouched by the real split attached to it.
        from galbench.tasks import load_task_file

        assert spec.sha256 == load_task_file(spec.source).sha256
    assert get_task("morphometry@1").split("real_cosmos").n == 100


def test_split_definition_hash_covers_the_id_list():
    a = parse_split("real_x", {"n": 2, "seed": 1, "sources": ["k"], "ids": [1, 2]}, "t")
    b = parse_split("real_x", {"n": 2, "seed": 1, "sources": ["k"], "ids": [2, 1]}, "t")
    assert a.definition_sha256() != b.definition_sha256()


@pytest.mark.parametrize(
    "table, message",
    [
        ({"n": 2, "seed": 1, "ids": [1, 2]}, "only a real split"),
        ({"n": 2, "seed": 1, "sources": ["k"], "ids": [1, 1]}, "duplicate ids"),
        ({"n": 2, "seed": 1, "sources": ["k"], "ids": [1.5]}, "list of source object ids"),
        ({"n": 2, "seed": 1, "sources": [""]}, "remote_files.toml"),
        ({"n": 2, "seed": 1, "colour": 1}, "colour"),
    ],
)
def test_malformed_split_tables_name_the_field(table, message):
    with pytest.raises(TaskSpecError, match=message):
        parse_split("real_x", table, "f.toml[x]")


def test_real_split_table_errors(tmp_path):
    bad = tmp_path / "_real_splits.toml"
    bad.write_text('["nosuch@1".real]\nn = 1\nseed = 1\nsources = ["a"]\n')
    with pytest.raises(TaskSpecError, match="nosuch@1"):
        attach_real_splits(bad)
    bad.write_text('["deblending@1".test]\nn = 1\nseed = 99\nsources = ["a"]\n')
    with pytest.raises(TaskSpecError, match="already defines split 'test'"):
        attach_real_splits(bad)
    bad.write_text('["deblending@1".real_other]\nn = 1\nseed = 99\n')
    with pytest.raises(TaskSpecError, match="names its source files"):
        attach_real_splits(bad)
    seed = get_task("deblending@1").split("test").seed
    bad.write_text(f'["deblending@1".real_other]\nn = 1\nseed = {seed}\nsources = ["a"]\n')
    with pytest.raises(TaskSpecError, match="another split's seed"):
        attach_real_splits(bad)


def test_no_challenge_split_for_a_real_test_split(monkeypatch):
    import dataclasses

    from galbench.challenge import challenge_task
    from galbench.tasks import FrozenDict

    monkeypatch.setenv("GALBENCH_CHALLENGE_SEED", "s3cret")
    spec = get_task("deblending@1")
    real_test = dataclasses.replace(spec.split("real_cosmos"), name="test")
    spec = dataclasses.replace(spec, splits=FrozenDict({**spec.splits, "test": real_test}))
    with pytest.raises(GalbenchError, match="test split is real data"):
        challenge_task(spec)


# ----------------------------------------------------------------------------- size conversion


def test_bulge_disk_half_light_radius_by_hand():
    # Pure components give their own (circularised) radius.
    assert bulge_disk_half_light_radius(0.0, 4.0, 2.0, 5.0, 1.0, 1.0) == pytest.approx(5.0)
    assert bulge_disk_half_light_radius(1.0, 4.0, 2.0, 5.0, 1.0, 1.0) == pytest.approx(2.0)
    assert bulge_disk_half_light_radius(0.0, 4.0, 2.0, 5.0, 1.0, 0.36) == pytest.approx(3.0)
    # b_1 = 1.678..., b_4 = 7.669... (Ciotti & Bertin 1999).
    assert sersic_b(1.0) == pytest.approx(1.67835, abs=1e-4)
    assert sersic_b(4.0) == pytest.approx(7.66925, abs=1e-4)


def test_bulge_disk_half_light_radius_matches_numerical_integration():
    def profile(r, n, r_e):
        return np.exp(-sersic_b(n) * (r / r_e) ** (1 / n))

    bt, n, rb, rd = 0.4, 3.0, 1.5, 6.0
    totals = [quad(lambda r: 2 * np.pi * r * profile(r, nn, re), 0, np.inf, limit=200)[0]
              for nn, re in ((n, rb), (1.0, rd))]

    def enclosed(radius):
        parts = [quad(lambda r: 2 * np.pi * r * profile(r, nn, re), 0, radius, limit=200)[0] / t
                 for (nn, re), t in zip(((n, rb), (1.0, rd)), totals)]
        return bt * parts[0] + (1 - bt) * parts[1]

    r = bulge_disk_half_light_radius(bt, n, rb, rd, 1.0, 1.0)
    assert enclosed(r) == pytest.approx(0.5, abs=1e-6)


def test_flux_radius_conversion():
    # 0.3" observed, PSF FWHM 0.1": sqrt(0.3^2 - 0.05^2) / 0.06.
    assert intrinsic_half_light_radius_px(0.3, 0.06, 0.1) == pytest.approx(np.sqrt(0.09 - 0.0025) / 0.06)
    # An unresolved object is floored at a tenth of its observed radius, never NaN.
    assert intrinsic_half_light_radius_px(0.04, 0.06, 0.1) == pytest.approx(0.004 / 0.06)


# ----------------------------------------------------------------------------- building


@needs_mirror
def test_real_blends_build_and_are_fixed_by_seed_ids_and_sources(mirror, tmp_path):
    home = tmp_path / "home"
    path = build_split("deblending@1", "real_cosmos", 6, home=home, progress=False, shard_size=4)
    split = load_split("deblending@1", "real_cosmos", 6, home=home)
    manifest = split.manifest
    assert set(manifest.sources) == set(get_task("deblending@1").split("real_cosmos").sources)
    assert manifest.split_sha256 == get_task("deblending@1").split("real_cosmos").definition_sha256()
    cat = split.catalog
    ids = set(get_task("deblending@1").split("real_cosmos").ids)
    assert set(cat["ident_central"]) <= ids and set(cat["ident_companion"]) <= ids
    assert (cat["ident_central"] != cat["ident_companion"]).all()
    assert ((cat["flux_ratio"] >= 0.1) & (cat["flux_ratio"] <= 1.0)).all()
    assert (cat["mag"] <= cat["mag_companion"]).all()
    assert ((cat["blendedness"] >= 0) & (cat["blendedness"] < 1)).all()
    iso = split.target_array("isolated")
    assert iso.shape == (6, 2, 1, 64, 64)
    # The blend is its two isolated galaxies plus noise of the task's sky level.
    residual = np.asarray(split.images[np.arange(6)]) - np.asarray(iso[np.arange(6)]).sum(axis=1)
    from galbench.sim.instruments import get_instrument

    sky = get_instrument("hst_wfc3_f160w").sky_sigma
    assert 0.8 * sky < np.median(np.abs(residual)) / 0.6745 < 2.0 * sky
    # Same seed, same bytes: another shard size and two workers.
    other = build_split("deblending@1", "real_cosmos", 6, home=tmp_path / "other", progress=False,
                        shard_size=6, workers=2)
    from galbench.data.manifest import Manifest

    assert Manifest.read(other / "manifest.json").content_sha256 == manifest.content_sha256
    assert path.name == "real_cosmos-first6"


@needs_mirror
def test_morphometry_real_split_and_its_scoring(mirror, tmp_path):
    from galbench.scoring import get_scorer
    from galbench.scoring.base import Predictions

    home = tmp_path / "home"
    build_split("morphometry@1", "real_cosmos", 5, home=home, progress=False)
    split = load_split("morphometry@1", "real_cosmos", 5, home=home)
    cat = split.catalog
    spec = get_task("morphometry@1")
    assert list(cat["ident"]) == list(spec.split("real_cosmos").ids[:5])
    assert np.allclose(10 ** cat["log10_r_half"], intrinsic_half_light_radius_px(cat["flux_radius"], 0.06))
    # A prediction whose model has exactly the true size and magnitude scores zero scatter.
    n = len(cat)
    mean = np.zeros((n, len(spec.targets)))
    names = list(spec.target_names)
    mean[:, names.index("mag")] = cat["mag"]
    mean[:, names.index("bulge_to_total")] = 0.0
    mean[:, names.index("n_bulge")] = 4.0
    mean[:, names.index("log10_r_bulge")] = 0.3
    mean[:, names.index("log10_r_disk")] = cat["log10_r_half"]
    mean[:, names.index("q_bulge")] = 1.0
    mean[:, names.index("q_disk")] = 1.0
    scorer = get_scorer(spec.type)
    preds = scorer.validate(spec, Predictions(np.asarray(cat["object_id"]), {"mean": mean,
                            "std": np.ones_like(mean)}), "p")
    scores = scorer.score(spec, preds, cat)
    metrics = scores.metrics if hasattr(scores, "metrics") else scores["metrics"]
    assert metrics["scatter/mag"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["scatter/log10_r_half"] == pytest.approx(0.0, abs=1e-9)
    assert "scatter/pa" not in metrics and "mean_coverage68" not in metrics
    # Doubling every predicted size is a +log10(2) bias in log10_r_half, nothing else.
    mean[:, names.index("log10_r_disk")] += np.log10(2)
    scores = scorer.score(spec, Predictions(preds.object_ids, {"mean": mean}), cat)
    metrics = scores.metrics if hasattr(scores, "metrics") else scores["metrics"]
    assert metrics["bias/log10_r_half"] == pytest.approx(np.log10(2))
    assert metrics["bias/mag"] == pytest.approx(0.0, abs=1e-12)


@needs_mirror
def test_a_changed_source_file_is_detected(tmp_path, monkeypatch):
    bad_mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "cosmos_hst", bad_mirror / "cosmos_hst")
    images = bad_mirror / "cosmos_hst" / "real_galaxy_images_extension.fits"
    data = bytearray(images.read_bytes())
    data[-100] ^= 0xFF
    images.write_bytes(bytes(data))
    monkeypatch.setenv("GALBENCH_MIRROR", str(bad_mirror))
    with pytest.raises(ChecksumError, match="real_galaxy_images_extension.fits"):
        build_split("morphometry@1", "real_cosmos", 2, home=tmp_path / "home", progress=False)
    assert not (tmp_path / "home" / "morphometry@1" / "real_cosmos-first2").exists()


def test_offline_without_mirror_says_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.delenv("GALBENCH_MIRROR", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a closed port: fails at once, offline
    with pytest.raises(DownloadError, match="GALBENCH_MIRROR"):
        build_split("morphometry@1", "real_cosmos", 2, home=tmp_path / "home", progress=False)


@needs_mirror
def test_dataset_serves_the_real_split_targets(mirror, tmp_path):
    from galbench.data.datasets import GalaxyDataset

    build_split("morphometry@1", "real_cosmos", 3, home=tmp_path, progress=False)
    data = GalaxyDataset("morphometry@1", "real_cosmos", root=tmp_path, n=3)
    assert data.split.target_columns == ("mag", "log10_r_half")
    image, target = data[0]
    assert tuple(image.shape) == (1, 64, 64) and tuple(target.shape) == (2,)
    assert float(target[0]) == pytest.approx(float(data.split.catalog["mag"][0]), rel=1e-6)


def test_prediction_files_may_enter_a_real_split(tmp_path):
    from galbench.errors import SubmissionError
    from galbench.scoring.submission import load_submission

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "real.npz").write_bytes(b"x")

    def write(split: str) -> None:
        (tmp_path / "submission.toml").write_text(
            'name = "x"\nauthors = ["a"]\ncontact = "a@b.c"\nlicense = "MIT"\n'
            'external_data = false\n\n[tasks."deblending@1"]\n'
            f'predictions = {{ {split} = "p/real.npz" }}\n'
        )

    write("real_cosmos")
    assert "real_cosmos" in load_submission(tmp_path).tasks["deblending@1"].predictions
    write("real_hsc")
    with pytest.raises(SubmissionError, match="real_cosmos"):
        load_submission(tmp_path)


@needs_mirror
def test_fits_export_of_a_real_split_says_so(mirror, tmp_path):
    from astropy.io import fits

    from galbench.data.export import export_fits

    build_split("morphometry@1", "real_cosmos", 2, home=tmp_path, progress=False)
    images, catalog = export_fits(load_split("morphometry@1", "real_cosmos", 2, home=tmp_path), tmp_path / "out")
    header = fits.getheader(images)
    assert header["REALDATA"] is True and header["PIXSCALE"] == pytest.approx(0.06)
    assert list(fits.getdata(catalog, 1)["ident"]) == list(get_task("morphometry@1").split("real_cosmos").ids[:2])


def test_text_catalog_columns_hash_by_content_not_by_memory(tmp_path):
    from galbench.data.build import content_hash

    images = tmp_path / "images.npy"
    np.save(images, np.zeros((2, 1, 2, 2), dtype="<f4"))
    ids = ["J094446.39-000219.8", "J110449.79+183216.3"]
    a = content_hash([images], {"id_str": np.array(list(ids), dtype=object)})
    b = content_hash([images], {"id_str": np.array([s + "" for s in ids], dtype=object)})
    c = content_hash([images], {"id_str": np.array(ids[::-1], dtype=object)})
    assert a == b != c


def test_leaderboard_check_offline_lists_real_receipts_as_not_verified(tmp_path, monkeypatch):
    """Without the source files (offline, no mirror) a real-split receipt cannot be rebuilt and
    checked: it is listed as not verified (like a challenge receipt without the seed), fetched
    once per split, and the check still passes; a changed source file would be a failure."""
    from galbench.leaderboard import check_leaderboard, write_leaderboard

    repo = Path(__file__).resolve().parents[1]
    src = repo / "leaderboard" / "receipts" / "morphometry@1" / "real_cosmos"
    if not src.is_dir():
        pytest.skip("no committed real_cosmos receipts")
    root = tmp_path / "leaderboard"
    dst = root / "receipts" / "morphometry@1" / "real_cosmos"
    shutil.copytree(src, dst)
    write_leaderboard(root)
    monkeypatch.delenv("GALBENCH_MIRROR", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    calls = []
    import galbench.data.download as download

    real_fetch = download.fetch
    monkeypatch.setattr(download, "fetch", lambda *a, **k: (calls.append(a[0]), real_fetch(*a, **k))[1])
    result = check_leaderboard(root, home=tmp_path / "home", repo_root=repo)
    assert result.ok, result.report()
    assert sorted(p for p, _ in result.not_verified) == sorted(
        f"receipts/morphometry@1/real_cosmos/{p.name}" for p in dst.glob("*.json"))
    assert all("GALBENCH_MIRROR" in why for _, why in result.not_verified)
    assert len(calls) == 1  # one failed fetch for the split, not one per receipt


@needs_mirror
@pytest.mark.parametrize("task, entry", [("deblending@1", "deblending-floor"), ("morphometry@1", "morphometry-floor")])
def test_evaluate_runs_on_the_real_splits_offline_with_the_mirror(mirror, tmp_path, task, entry):
    from galbench.evaluate import evaluate
    from galbench.verify import verify_receipt

    repo = Path(__file__).resolve().parents[1]
    receipt, path = evaluate(repo / "baselines" / entry, task=task, split="real_cosmos", n=4,
                             home=tmp_path / "home", out=tmp_path / "r.json", progress=False)
    assert receipt["status"] == "ok" and receipt["split"] == "real_cosmos" and receipt["partial"]
    assert receipt["n"] == 4
    assert verify_receipt(path, home=tmp_path / "home", repo_root=repo).ok


def test_every_shipped_real_split_names_known_sha256_pinned_sources():
    from galbench.data.download import remote_file
    from galbench.tasks import list_tasks

    real = [(t.id, s) for t in list_tasks() for s in t.splits.values() if s.real]
    assert {(task, s.name) for task, s in real} >= {
        ("deblending@1", "real_cosmos"), ("morphometry@1", "real_cosmos"),
        ("rings@1", "train"), ("rings@1", "val"), ("rings@1", "test"), ("galaxy10@1", "test"),
    }
    for task, split in real:
        for key in split.sources:
            assert remote_file(key).sha256 is not None, f"{task} {split.name}: {key} has no sha256"


@needs_mirror
def test_a_build_of_an_older_real_split_definition_is_refused(mirror, tmp_path, monkeypatch):
    import dataclasses

    from galbench.data.manifest import SplitCorruptedError
    from galbench.tasks import FrozenDict

    build_split("morphometry@1", "real_cosmos", 2, home=tmp_path, progress=False)
    spec = get_task("morphometry@1")
    edited = dataclasses.replace(spec.split("real_cosmos"), ids=spec.split("real_cosmos").ids[::-1])
    changed = dataclasses.replace(spec, splits=FrozenDict({**spec.splits, "real_cosmos": edited}))
    with pytest.raises(SplitCorruptedError, match="--overwrite"):
        load_split(changed, "real_cosmos", 2, home=tmp_path)
