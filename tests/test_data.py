"""Loading the official CIFAR archives (the real mini copies), splitting, downloading, errors."""

import functools
import hashlib
import http.server
import shutil
import threading

import numpy as np
import pytest

from hks import data
from hks.errors import DatasetError


def test_cifar100_has_fine_and_coarse_labels(cifar100_dir):
    cifar = data.load_cifar("cifar100", cifar100_dir, download=False)
    assert cifar.train.x.shape == (486, 32, 32, 3) and cifar.train.x.dtype == np.uint8
    assert cifar.test.x.shape == (916, 32, 32, 3)
    assert set(np.unique(cifar.test.fine)) == set(range(100))
    assert set(np.unique(cifar.test.coarse)) == set(range(20))
    assert cifar.spec.num_fine == 100 and cifar.spec.num_coarse == 20


def test_cifar10_is_single_headed(cifar10_dir):
    cifar = data.load_cifar("cifar10", cifar10_dir, download=False)
    assert len(cifar.train) == 5170 and len(cifar.test) == 1017
    assert cifar.train.coarse is None and set(np.unique(cifar.train.fine)) == set(range(10))


def test_images_are_decoded_channel_last(cifar10_dir):
    """A real photo has strongly correlated neighbouring pixels; a wrong reshape destroys that."""
    x = data.load_cifar("cifar10", cifar10_dir, download=False).train.x[:200].astype(float)
    horizontal = np.abs(np.diff(x, axis=2)).mean()
    shuffled = np.abs(x[:, :, 1:] - x[:, :, np.random.default_rng(0).permutation(31)]).mean()
    assert horizontal < 0.5 * shuffled


def test_validation_split_is_stratified_disjoint_and_seeded(cifar10_dir):
    splits = data.load_splits("cifar10", cifar10_dir, download=False, val_fraction=0.1, seed=3)
    assert len(splits.train) + len(splits.val) == 5170
    assert abs(len(splits.val) - 517) <= 10
    val_counts = np.bincount(splits.val.fine, minlength=10)
    assert val_counts.min() >= 0.8 * val_counts.mean()
    again = data.load_splits("cifar10", cifar10_dir, download=False, val_fraction=0.1, seed=3)
    assert np.array_equal(again.val.x, splits.val.x)
    other = data.load_splits("cifar10", cifar10_dir, download=False, val_fraction=0.1, seed=4)
    assert not np.array_equal(other.val.fine, splits.val.fine)
    train_rows = {row.tobytes() for row in splits.train.x}
    assert not any(row.tobytes() in train_rows for row in splits.val.x)


def test_dataset_size_limits_the_training_pool(cifar10_dir):
    splits = data.load_splits("cifar10", cifar10_dir, download=False, dataset_size=600, seed=1)
    assert len(splits.train) + len(splits.val) == 600 and len(splits.test) == 1017


def test_a_dataset_size_beyond_the_archive_is_said_before_the_search(tiny_settings, capsys):
    from hks.objective import check_setup

    check_setup(tiny_settings.replace(dataset_size=2000))  # the CIFAR-100 mini archive has 486 training images
    assert "note: --dataset-size 2000 is more than the 486 training images cifar100 has here: all 486 are used" \
        in capsys.readouterr().out
    check_setup(tiny_settings.replace(dataset_size=300))
    assert "note" not in capsys.readouterr().out


def test_training_batches_are_augmented_and_evaluation_batches_are_not(cifar10_dir):
    split = data.load_cifar("cifar10", cifar10_dir, download=False).train.take(np.arange(64))
    plain = next(iter(data.make_dataset(split, 64, training=False)))[0].numpy()
    assert np.array_equal(plain, split.x.astype(np.float32))
    flipped_any = False
    for _ in range(3):
        batch, labels = next(iter(data.make_dataset(split, 64, training=True, seed=None)))
        order = [int(np.flatnonzero((split.x.astype(np.float32) == img).all(axis=(1, 2, 3))
                                    | (split.x[:, :, ::-1].astype(np.float32) == img).all(axis=(1, 2, 3)))[0])
                 for img in batch.numpy()]
        assert np.array_equal(labels["fine"].numpy(), split.fine[order])
        flipped_any |= any(not np.array_equal(img, split.x[i].astype(np.float32))
                           for img, i in zip(batch.numpy(), order))
    assert flipped_any


def test_missing_archive_without_download_names_path_and_url(tmp_path):
    with pytest.raises(DatasetError) as err:
        data.load_cifar("cifar100", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "cifar-100-python.tar.gz") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message


def test_corrupt_archive_gives_a_clear_error(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DatasetError, match="not a readable cifar-10-python.tar.gz"):
        data.load_cifar("cifar10", tmp_path, download=False)


@pytest.fixture
def archive_server(cifar10_dir, tmp_path):
    """Serve the mini archive over HTTP on loopback, as the official site would."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(cifar10_dir / "cifar-10-python.tar.gz", served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz", served
    server.shutdown()


def test_download_checks_md5_and_renames_into_place(archive_server, tmp_path):
    url, served = archive_server
    md5 = hashlib.md5((served / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    dest = tmp_path / "ml_req" / "cifar-10-python.tar.gz"
    data.download_archive(url, dest, md5)
    assert dest.read_bytes() == (served / "cifar-10-python.tar.gz").read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_download_with_wrong_checksum_leaves_nothing_behind(archive_server, tmp_path):
    url, _ = archive_server
    dest = tmp_path / "ml_req" / "cifar-10-python.tar.gz"
    with pytest.raises(DatasetError, match="corrupt"):
        data.download_archive(url, dest, "0" * 32)
    assert list(dest.parent.iterdir()) == []


def test_unreachable_download_says_where_to_put_the_file(tmp_path):
    dest = tmp_path / "cifar-10-python.tar.gz"
    with pytest.raises(DatasetError) as err:
        data.download_archive("http://127.0.0.1:9/cifar-10-python.tar.gz", dest, None)
    assert "put cifar-10-python.tar.gz in" in str(err.value) and list(tmp_path.iterdir()) == []
