"""scratchnet.data: the course file format, the default and folder data sets, noise, the loader."""
import contextlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import scratchnet
from scratchnet import files, psnr
from scratchnet.data import (
    NOISE_MODELS,
    TRAIN_SOURCES,
    VAL_SOURCES,
    PackagedImage,
    PairLoader,
    add_noise,
    build_default_dataset,
    dataset_from_folder,
    default_data_dir,
    ensure_data,
    folder_split,
    load_pairs,
    paths,
    read_image,
    save_pairs,
)
from scratchnet.data.crops import random_crops
from scratchnet.data.dihedral import dihedral, random_dihedral
from scratchnet.data.images import downscale
from scratchnet.data.synthesis import synthesize_pairs


def images(n=4, h=8, w=8, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def default_set():
    return build_default_dataset(n_train=500, n_val=200, seed=0)


# ---------------------------------------------------------------- course format

def test_save_load_round_trip(tmp_path):
    a, b = images(seed=1), images(seed=2)
    save_pairs(tmp_path / "pairs.pkl", a, b)
    la, lb = load_pairs(tmp_path / "pairs.pkl")
    assert torch.equal(la, a) and torch.equal(lb, b)
    assert la.dtype == torch.uint8 and la.device.type == "cpu"


def test_load_accepts_a_plain_torch_save_of_a_list(tmp_path):
    a, b = images(seed=1), images(seed=2)
    torch.save([a, b], tmp_path / "list.pkl")
    la, lb = load_pairs(tmp_path / "list.pkl")
    assert torch.equal(la, a) and torch.equal(lb, b)


def test_saving_a_view_writes_only_the_view(tmp_path):
    big = images(n=200)
    save_pairs(tmp_path / "small.pkl", big[:2], big[2:4])
    save_pairs(tmp_path / "copy.pkl", big[:2].clone(), big[2:4].clone())
    assert (tmp_path / "small.pkl").stat().st_size < 2 * (tmp_path / "copy.pkl").stat().st_size


@pytest.mark.parametrize("payload, message", [
    (images().float(), "single tensor of shape (4, 3, 8, 8)"),
    ((images(), images().float()), "uint8"),
    ((images(h=8).float() / 255, images(h=8).float() / 255), "uint8"),
    ((images()[:, :1], images()[:, :1]), "(4, 1, 8, 8)"),
    ((images()[0], images()[0]), "(3, 8, 8)"),
    ((images(h=8), images(h=16)), "differ in shape"),
    ((images(),), "pair"),
    ((images(), images(), images()), "pair"),
    ({"a": images(), "b": images()}, "pair"),
    ((images(), "not a tensor"), "str"),
])
def test_load_rejects_what_is_not_a_pair_of_uint8_images(tmp_path, payload, message):
    path = tmp_path / "bad.pkl"
    torch.save(payload, path)
    with pytest.raises(ValueError) as err:
        load_pairs(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_load_rejects_corrupt_and_truncated_files(tmp_path):
    (tmp_path / "noise.pkl").write_bytes(os.urandom(1000))
    save_pairs(tmp_path / "good.pkl", images(), images())
    (tmp_path / "cut.pkl").write_bytes((tmp_path / "good.pkl").read_bytes()[:300])
    (tmp_path / "empty.pkl").write_bytes(b"")
    for name in ("noise.pkl", "cut.pkl", "empty.pkl"):
        with pytest.raises(ValueError, match="truncated, corrupt"):
            load_pairs(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        load_pairs(tmp_path / "missing.pkl")


class _Exploit:
    """Unpickling this creates `marker`: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path, writer):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pkl"
    payload = (_Exploit(marker), images())
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(ValueError, match="objects other than tensors"):
        load_pairs(path)
    assert not marker.exists()
    with contextlib.suppress(Exception):  # the payload is live: an unsafe load does run it
        torch.load(path, weights_only=False)
    assert marker.exists()


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "pairs.pkl"
    save_pairs(target, images(seed=1), images(seed=2))
    save_pairs(target, images(seed=3), images(seed=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.pkl"]
    assert torch.equal(load_pairs(target)[0], images(seed=3))


def test_a_failed_save_keeps_the_existing_file(tmp_path, monkeypatch):
    target = tmp_path / "pairs.pkl"
    save_pairs(target, images(seed=1), images(seed=2))

    def crash(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(files.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_pairs(target, images(seed=3), images(seed=4))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.pkl"]
    assert torch.equal(load_pairs(target)[0], images(seed=1))


def test_save_rejects_an_invalid_pair_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="save_pairs.*uint8"):
        save_pairs(tmp_path / "x.pkl", images().float(), images().float())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- noise

def test_gaussian_noise_has_the_requested_sigma():
    clean = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    noisy = add_noise(clean, "gaussian", sigma=20 / 255, generator=torch.Generator().manual_seed(0))
    assert noisy.dtype == torch.uint8 and noisy.shape == clean.shape
    diff = noisy.double() - 128
    assert abs(diff.mean()) < 0.3 and abs(diff.std() - 20) < 0.3


def test_poisson_noise_variance_follows_the_peak():
    clean = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    noisy = add_noise(clean, "poisson", peak=40, generator=torch.Generator().manual_seed(0))
    diff = noisy.double() - 128
    assert abs(diff.mean()) < 0.5
    assert abs(diff.var() / (128 * 255 / 40) - 1) < 0.05


def test_salt_and_pepper_replaces_the_requested_fraction_with_0_or_255():
    clean = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    noisy = add_noise(clean, "salt_pepper", amount=0.1, generator=torch.Generator().manual_seed(0))
    changed = noisy != 128
    assert abs(changed.double().mean() - 0.1) < 0.005
    assert set(noisy[changed].unique().tolist()) == {0, 255}
    assert abs((noisy[changed] == 255).double().mean() - 0.5) < 0.03


@pytest.mark.parametrize("noise", NOISE_MODELS)
def test_noise_is_seeded_and_clipped(noise):
    clean = images(n=16, h=16, w=16)
    draw = [add_noise(clean, noise, generator=torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])
    assert draw[0].dtype == torch.uint8 and not torch.equal(draw[0], clean)


@pytest.mark.parametrize("kwargs, message", [
    ({"noise": "speckle"}, "unknown noise"),
    ({"noise": "poisson", "sigma": 0.1}, "sigma applies to gaussian"),
    ({"noise": "gaussian", "peak": 10}, "peak applies to poisson"),
    ({"noise": "gaussian", "amount": 0.1}, "amount applies to salt_pepper"),
    ({"sigma": -0.1}, "sigma must be"),
    ({"noise": "poisson", "peak": 0}, "peak must be"),
    ({"noise": "salt_pepper", "amount": 1.5}, "amount must"),
])
def test_add_noise_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        add_noise(images(), **kwargs)
    with pytest.raises(ValueError, match="uint8"):
        add_noise(images().float())


# ---------------------------------------------------------------- crops, flips, downscaling

def test_crops_are_windows_of_the_image():
    ramp = torch.arange(100, dtype=torch.uint8)
    image = torch.stack([ramp[:, None].expand(100, 90), ramp[None, :90].expand(100, 90),
                         torch.zeros(100, 90, dtype=torch.uint8)])
    crops = random_crops(image, 50, torch.Generator().manual_seed(0), size=32, max_factor=1.0)
    assert crops.shape == (50, 3, 32, 32)
    rows, cols = crops[:, 0].long(), crops[:, 1].long()
    assert torch.equal(rows - rows[:, :1, :1], torch.arange(32)[:, None].expand(50, 32, 32))
    assert torch.equal(cols - cols[:, :1, :1], torch.arange(32).expand(50, 32, 32))
    assert len(set(zip(rows[:, 0, 0].tolist(), cols[:, 0, 0].tolist()))) > 40


def test_crops_come_at_several_scales():
    ramp = torch.arange(256, dtype=torch.uint8)
    image = torch.stack([ramp[:, None].expand(256, 256), ramp[None, :].expand(256, 256),
                         torch.zeros(256, 256, dtype=torch.uint8)])
    crops = random_crops(image, 400, torch.Generator().manual_seed(0), size=32, max_factor=5.0)
    factor = (crops[:, 0, -1, :].double() - crops[:, 0, 0, :].double()).mean(1) / 31
    assert factor.min() > 0.95 and factor.max() < 5.05
    assert factor.max() - factor.min() > 1.5 and len(factor.round(decimals=2).unique()) >= 4
    assert torch.allclose(factor, (crops[:, 1, :, -1].double() - crops[:, 1, :, 0].double())
                          .mean(1) / 31, atol=0.05)


def test_random_crops_rejects_a_small_image():
    with pytest.raises(ValueError, match="smaller than the 32×32"):
        random_crops(images(n=1, h=20, w=40)[0], 3, torch.Generator())


def test_the_eight_dihedral_transforms_are_distinct_and_invertible():
    x = images(n=1, h=5, w=5)
    outs = [dihedral(x, k) for k in range(8)]
    assert len({o.numpy().tobytes() for o in outs}) == 8
    for k in range(8):
        back = torch.flip(outs[k], dims=(-1,)) if k >= 4 else outs[k]
        assert torch.equal(torch.rot90(back, -(k % 4), dims=(-2, -1)), x)


def test_random_dihedral_keeps_the_shape_of_non_square_images():
    x = images(n=64, h=4, w=6)
    y = random_dihedral(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    for xi, yi in zip(x, y):
        assert any(torch.equal(dihedral(xi, k), yi) for k in (0, 2, 4, 6))


def test_downscale_keeps_the_shorter_side_at_least_min_side():
    image = images(n=1, h=100, w=200)[0]
    assert downscale(image, 2.0).shape == (3, 50, 100)
    assert downscale(image, 10.0, min_side=32).shape == (3, 32, 64)
    assert downscale(image, 0.5).shape == (3, 100, 200)


# ---------------------------------------------------------------- default data set

def test_packaged_images_are_on_disk_and_validation_sources_are_held_out():
    for source in TRAIN_SOURCES + VAL_SOURCES:
        assert source.path().is_file(), source
    train = {s.path().resolve() for s in TRAIN_SOURCES}
    val = {s.path().resolve() for s in VAL_SOURCES}
    assert len(train) == len(TRAIN_SOURCES) and len(val) == len(VAL_SOURCES)
    assert not train & val
    names = {s.name for s in TRAIN_SOURCES + VAL_SOURCES}
    assert "motorcycle_right.png" not in names


def test_default_set_shapes_and_dtypes(default_set):
    (a, b), (noisy, clean) = default_set
    assert a.shape == b.shape == (500, 3, 32, 32)
    assert noisy.shape == clean.shape == (200, 3, 32, 32)
    assert all(t.dtype == torch.uint8 for t in (a, b, noisy, clean))


def test_default_set_is_deterministic_per_seed(default_set):
    (a, b), (noisy, clean) = default_set
    (a2, b2), (noisy2, clean2) = build_default_dataset(n_train=500, n_val=200, seed=0)
    assert all(torch.equal(x, y) for x, y in ((a, a2), (b, b2), (noisy, noisy2), (clean, clean2)))
    (a3, _), (_, clean3) = build_default_dataset(n_train=50, n_val=20, seed=1)
    assert not torch.equal(a[:50], a3) and not torch.equal(clean[:20], clean3)


def test_validation_set_does_not_depend_on_n_train(default_set):
    _, (noisy, clean) = default_set
    (a, b), (noisy0, clean0) = build_default_dataset(n_train=0, n_val=200, seed=0)
    assert a.shape == (0, 3, 32, 32) and b.shape == (0, 3, 32, 32)
    assert torch.equal(noisy, noisy0) and torch.equal(clean, clean0)


def test_default_noise_puts_the_noisy_validation_input_near_the_course_psnr(default_set):
    _, (noisy, clean) = default_set
    assert 19.5 < float(psnr(noisy.float() / 255, clean.float() / 255)) < 22


def test_training_pairs_are_two_independent_noise_draws(default_set):
    (a, b), _ = default_set
    assert (a != b).double().mean() > 0.9
    # independent draws of sigma each: a - b has sigma·√2, so PSNR(a, b) ≈ PSNR(noisy) − 3 dB
    assert 16.5 < float(psnr(a.float() / 255, b.float() / 255)) < 19


def test_validation_crops_are_taken_from_the_held_out_images_only(monkeypatch):
    loaded = []
    original = PackagedImage.load

    def spy(self):
        loaded.append(self.name)
        return original(self)

    monkeypatch.setattr(PackagedImage, "load", spy)
    build_default_dataset(n_train=0, n_val=100, seed=0)
    assert set(loaded) == {s.name for s in VAL_SOURCES}
    loaded.clear()
    build_default_dataset(n_train=100, n_val=0, seed=0)
    assert set(loaded) <= {s.name for s in TRAIN_SOURCES} and len(set(loaded)) > 5


def test_synthesis_keeps_training_and_validation_sources_apart():
    def constant(value):
        return (lambda: torch.full((3, 64, 64), value, dtype=torch.uint8)), (64, 64)

    (a, b), (_, clean) = synthesize_pairs([constant(40), constant(60)], [constant(200)],
                                              300, 100, 0, "gaussian", {}, where="test")
    assert set(clean.unique().tolist()) == {200}
    means = ((a.double() + b.double()) / 2).mean(dim=(1, 2, 3))
    # grey sources stay grey under random colours, and half of them are inverted (255 − value)
    near = {v: (means - v).abs() < 6 for v in (40, 60, 195, 215)}
    assert all(bool(hit.any()) for hit in near.values())
    assert bool((near[40] | near[60] | near[195] | near[215]).all())


@pytest.mark.parametrize("noise, kw", [("poisson", {"peak": 30}), ("salt_pepper", {"amount": 0.1})])
def test_default_set_with_other_noise_models(noise, kw):
    _, (noisy, clean) = build_default_dataset(n_train=0, n_val=50, seed=0, noise=noise, **kw)
    _, (_, clean_gauss) = build_default_dataset(n_train=0, n_val=50, seed=0)
    assert torch.equal(clean, clean_gauss)
    assert 10 < float(psnr(noisy.float() / 255, clean.float() / 255)) < 25


def test_default_set_rejects_bad_sizes():
    with pytest.raises(ValueError, match="build_default_dataset: n_train"):
        build_default_dataset(n_train=-1)


# ---------------------------------------------------------------- folder data set

def _write_folder(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Six flat-colour images in assorted modes (the colour names the file), plus files that
    must be skipped: a corrupt png, a too-small image, a text file. → {file name: RGB}."""
    folder.mkdir()
    (folder / "sub").mkdir()
    colours = {}
    for i, (name, mode) in enumerate([("a.png", "RGB"), ("b.jpg", "RGB"), ("c.png", "L"),
                                      ("d.png", "RGBA"), ("sub/e.png", "RGB"), ("f.bmp", "RGB")]):
        rgb = (30 + 40 * i,) * 3 if mode == "L" else (30 + 40 * i, 200 - 30 * i, 50 + 20 * i)
        image = Image.new("RGB", (70 + 10 * i, 60), rgb).convert(mode)
        image.save(folder / name, quality=100) if name.endswith(".jpg") else image.save(folder / name)
        colours[name] = rgb
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("RGB", (20, 20)).save(folder / "tiny.png")
    (folder / "notes.txt").write_text("not an image")
    return colours


def test_folder_data_set(tmp_path):
    colours = _write_folder(tmp_path / "photos")
    train, val = folder_split(tmp_path / "photos", seed=0)
    names = {p.relative_to(tmp_path / "photos").as_posix() for p in train + val}
    assert names == set(colours) and len(val) == 1 and not set(train) & set(val)
    (a, b), (noisy, clean) = dataset_from_folder(tmp_path / "photos", n_train=120, n_val=30)
    assert a.shape == b.shape == (120, 3, 32, 32) and clean.shape == noisy.shape == (30, 3, 32, 32)
    held_out = torch.tensor(colours[val[0].relative_to(tmp_path / "photos").as_posix()])
    assert (clean.long() - held_out[None, :, None, None]).abs().max() <= 2  # jpeg may be off by 1
    (a2, _), (_, clean2) = dataset_from_folder(tmp_path / "photos", n_train=120, n_val=30)
    assert torch.equal(a, a2) and torch.equal(clean, clean2)


def test_folder_split_depends_on_the_seed(tmp_path):
    _write_folder(tmp_path / "photos")
    splits = {tuple(folder_split(tmp_path / "photos", seed=s)[1]) for s in range(8)}
    assert len(splits) > 1


def test_folder_with_fewer_than_two_readable_images_is_rejected(tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "only.png")
    (folder / "broken.jpg").write_bytes(b"garbage")
    Image.new("RGB", (16, 64)).save(folder / "narrow.png")
    with pytest.raises(ValueError, match="holds 1 readable image.*3 file"):
        dataset_from_folder(folder, n_train=10, n_val=5)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        dataset_from_folder(tmp_path / "absent")


def test_read_image_gives_rgb_uint8(tmp_path):
    Image.new("L", (40, 30), 77).save(tmp_path / "grey.png")
    Image.fromarray(np.full((30, 40), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.new("RGBA", (40, 30), (1, 2, 3, 0)).save(tmp_path / "alpha.png")
    for name, value in (("grey.png", [77] * 3), ("deep.png", [255] * 3), ("alpha.png", [1, 2, 3])):
        image = read_image(tmp_path / name)
        assert image.shape == (3, 30, 40) and image.dtype == torch.uint8
        assert image[:, 0, 0].tolist() == value
    Image.new("RGB", (400, 100)).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png", max_side=100).shape == (3, 25, 100)


# ---------------------------------------------------------------- loader

def test_loader_batches_shapes_and_range():
    a, b = images(n=10, h=4, w=4, seed=1), images(n=10, h=4, w=4, seed=2)
    loader = PairLoader(a, b, batch_size=4, shuffle=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(x) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == y.dtype == torch.float32 and x.shape == (4, 3, 4, 4)
    assert torch.equal(x, a[:4].float() / 255) and torch.equal(y, b[:4].float() / 255)
    dropping = PairLoader(a, b, batch_size=4, drop_last=True)
    assert len(dropping) == 2 and [len(x) for x, _ in dropping] == [4, 4]


def test_loader_takes_float_images_in_0_255():
    a = images(n=6, h=4, w=4)
    from_uint8 = torch.cat([x for x, _ in PairLoader(a, a, 4, shuffle=False)])
    from_float = torch.cat([x for x, _ in PairLoader(a.double(), a.double(), 4, shuffle=False)])
    assert from_float.dtype == torch.float32 and torch.equal(from_uint8, from_float)


def _epoch(loader):
    return [torch.cat(pair, dim=1) for pair in loader]


def test_shuffle_is_reproducible_and_changes_every_epoch():
    a = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 2, 2).contiguous()
    first, second = PairLoader(a, a, 8, seed=3), PairLoader(a, a, 8, seed=3)
    e1, e2 = _epoch(first), _epoch(first)
    assert all(torch.equal(p, q) for p, q in zip(e1, _epoch(second)))
    order = torch.cat([x[:, 0, 0, 0] for x in e1])
    assert sorted((order * 255).round().tolist()) == list(range(20))
    assert not torch.equal(order, torch.cat([x[:, 0, 0, 0] for x in e2]))
    assert not torch.equal(order, torch.cat([x[:, 0, 0, 0] for x in _epoch(PairLoader(a, a, 8, seed=4))]))
    resumed = PairLoader(a, a, 8, seed=3)
    resumed.epoch = 1
    assert all(torch.equal(p, q) for p, q in zip(e2, _epoch(resumed)))


def test_augmentation_is_identical_for_both_images_of_a_pair():
    a = images(n=64, h=6, w=6)
    plain = torch.cat([x for x, _ in PairLoader(a, a, 16, shuffle=False)])
    augmented_x, augmented_y = zip(*PairLoader(a, a, 16, shuffle=False, augment=True))
    augmented_x, augmented_y = torch.cat(augmented_x), torch.cat(augmented_y)
    assert torch.equal(augmented_x, augmented_y)
    assert not torch.equal(augmented_x, plain)
    for xi, pi in zip(augmented_x, plain):
        assert any(torch.equal(dihedral(pi, k), xi) for k in range(8))


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"),
                                    pytest.param("cuda", marks=pytest.mark.skipif(
                                        not torch.cuda.is_available(), reason="no GPU"))])
def test_loader_puts_batches_on_the_requested_device(device):
    a = images(n=5, h=4, w=4)
    x, y = next(iter(PairLoader(a, a, 2, device=device, augment=True)))
    assert x.device.type == y.device.type == torch.device(device).type
    assert x.dtype == y.dtype == torch.float32


def test_loader_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"PairLoader: a \(4, 3, 8, 8\) and b \(5, 3, 8, 8\) differ"):
        PairLoader(images(n=4), images(n=5))
    with pytest.raises(ValueError, match=r"PairLoader: a: expected images of shape \(N, C, H, W\)"):
        PairLoader(images()[0], images()[0])
    with pytest.raises(ValueError, match="batch_size"):
        PairLoader(images(), images(), batch_size=0)


# ---------------------------------------------------------------- data directory

def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("SCRATCHNET_DATA_DIR")
    checkout = Path(scratchnet.__file__).resolve().parents[1]
    assert (checkout / "pyproject.toml").is_file()
    assert default_data_dir() == checkout / "data"


def test_ensure_data_builds_once_and_never_overwrites(tmp_path, monkeypatch):
    train, val = ensure_data(tmp_path / "d", n_train=60, n_val=20)
    assert (train.name, val.name) == ("train_data.pkl", "val_data.pkl")
    assert load_pairs(train)[0].shape == (60, 3, 32, 32) and load_pairs(val)[1].shape == (20, 3, 32, 32)
    stamps = (train.stat().st_mtime_ns, val.stat().st_mtime_ns)

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt although both files exist")

    monkeypatch.setattr(paths, "build_default_dataset", no_build)
    assert ensure_data(tmp_path / "d", n_train=60, n_val=20) == (train, val)
    assert (train.stat().st_mtime_ns, val.stat().st_mtime_ns) == stamps
    monkeypatch.undo()

    course = tmp_path / "course"
    save_pairs(course / "train_data.pkl", images(seed=5), images(seed=6))
    before = (course / "train_data.pkl").read_bytes()
    train, val = ensure_data(course, n_train=60, n_val=20)
    assert train.read_bytes() == before
    assert load_pairs(val)[0].shape == (20, 3, 32, 32)
