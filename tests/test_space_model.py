"""Sampled points of the classic space use every option, and points showing every option and pair of
structural options build valid two-headed models."""

import itertools
from collections import Counter

import numpy as np
import pytest
from hyperopt import hp

from hks import model, space
from hks.errors import SpaceError

N_POINTS = 60


@pytest.fixture(scope="module")
def points():
    return [space.sample_point(space.SPACE, seed) for seed in range(N_POINTS)]


def test_sampled_points_cover_every_option(points):
    seen = {key: Counter(str(p[key]) for p in points) for key in space.SPACE}
    assert set(seen["optimizer"]) == set(space.OPTIMIZERS)
    assert set(seen["pooling_type"]) == set(space.POOLING_TYPES)
    assert set(seen["activation"]) == set(space.ACTIVATIONS)
    assert set(seen["use_BN"]) == {"True", "False"}
    assert set(seen["first_conv"]) == {"None", "3", "4"}
    assert set(seen["residual"]) == {"None", "1", "2", "3", "4"}
    assert set(seen["nb_conv_pool_layers"]) == {"2", "3"}
    assert set(seen["conv_pool_res_start_idx"]) == {"0", "1", "2"}
    assert set(seen["conv_kernel_size"]) == set(seen["res_conv_kernel_size"]) == {"2", "3", "4"}
    assert "None" in seen["one_more_fc"] and len(seen["one_more_fc"]) > 5


NUMERIC_RANGES = [
    ("lr_rate_mult", np.exp(-0.5), np.exp(0.5)), ("l2_weight_reg_mult", np.exp(-1.3), np.exp(1.3)),
    ("batch_size", 100, 700), ("coarse_labels_weight", 0.1, 0.7), ("conv_dropout_drop_proba", 0, 0.35),
    ("fc_dropout_drop_proba", 0, 0.6), ("conv_hiddn_units_mult", np.exp(-0.6), np.exp(0.6)),
    ("fc_units_1_mult", np.exp(-0.6), np.exp(0.6)),
]
NUMERIC = {key for key, _, _ in NUMERIC_RANGES}


@pytest.mark.parametrize("key, low, high", NUMERIC_RANGES)
def test_numeric_keys_stay_in_their_classic_ranges(points, key, low, high):
    values = [p[key] for p in points]
    assert low <= min(values) and max(values) <= high
    assert max(values) - min(values) > 0.5 * (high - low)


def test_batch_size_is_a_multiple_of_five(points):
    assert all(p["batch_size"] % 5 == 0 for p in points)


STRUCTURE = ("pooling_type", "residual", "nb_conv_pool_layers", "conv_pool_res_start_idx", "first_conv")


def _options(point: dict) -> set[tuple]:
    """Each choice's value, and each pair of the choices that shape the network together."""
    single = {(key, str(point[key])) for key in space.SPACE if key not in NUMERIC | {"one_more_fc"}}
    single.add(("one_more_fc", point["one_more_fc"] is None))  # None or a fraction: whether the layer is there
    return single | {(a, str(point[a]), b, str(point[b])) for a, b in itertools.combinations(STRUCTURE, 2)}


def covering(points: list[dict]) -> list[dict]:
    """Few of ``points`` that together show every option and pair of structural options they show
    (greedy set cover): building each of 60 models took 70 s of the suite; this builds under half."""
    wanted, chosen = set().union(*map(_options, points)), []
    while wanted:
        best = max(points, key=lambda point: len(_options(point) & wanted))
        chosen.append(best)
        wanted -= _options(best)
    return chosen


def test_points_with_every_option_and_pair_of_structural_options_build_two_headed_softmax_models(points):
    import keras

    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    chosen = covering(points)
    assert set().union(*map(_options, chosen)) == set().union(*map(_options, points)) and len(chosen) < len(points)
    for point in chosen:
        built = model.build_model(point)
        out = built(images, training=False)
        assert out["fine"].shape == (2, 100) and out["coarse"].shape == (2, 20)
        for head in ("fine", "coarse"):
            assert np.allclose(out[head].numpy().sum(axis=1), 1.0, atol=1e-4), point
        assert built.get_layer("fine").activation.__name__ == "softmax"
        compiled = built.get_compile_config()
        assert compiled["loss_weights"] == {"fine": 1.0, "coarse": float(point["coarse_labels_weight"])}
        assert compiled["loss"] == {"fine": "sparse_categorical_crossentropy",
                                    "coarse": "sparse_categorical_crossentropy"}
        keras.backend.clear_session()


def test_single_head_model_for_cifar10():
    built = model.build_model(space.demo_point(), num_fine=10, num_coarse=None)
    assert list(built.output) == ["fine"] and built.output["fine"].shape == (None, 10)


def test_learning_rate_and_optimizer_follow_the_point():
    point = {**space.demo_point(), "optimizer": "Nadam", "lr_rate_mult": 0.5}
    built = model.build_model(point)
    assert type(built.optimizer).__name__ == "Nadam"
    assert np.isclose(float(built.optimizer.learning_rate), 0.0005)


def test_custom_space_file_is_loaded_and_fingerprinted(tmp_path):
    path = tmp_path / "my_space.py"
    path.write_text("from hyperopt import hp\nSPACE = {'x': hp.uniform('x', 0, 1)}\n")
    loaded = space.load_space(str(path))
    assert space.fingerprint(loaded) == space.fingerprint({"x": hp.uniform("x", 0, 1)})
    assert space.fingerprint(loaded) != space.fingerprint({"x": hp.uniform("x", 0, 2)})
    assert space.fingerprint(space.load_space("hks.space")) == space.fingerprint(space.SPACE)


@pytest.mark.parametrize("name, fragment", [("no_such_module_xyz", "cannot import search space"),
                                            ("missing_file.py", "not found"), ("json", "defines no SPACE")])
def test_bad_space_names_give_clear_errors(name, fragment):
    with pytest.raises(SpaceError, match=fragment):
        space.load_space(name)


def test_a_point_missing_keys_or_with_a_bad_optimizer_is_refused_clearly():
    with pytest.raises(SpaceError, match="has no lr_rate_mult"):
        model.build_model({k: v for k, v in space.demo_point().items() if k != "lr_rate_mult"})
    with pytest.raises(SpaceError, match="unknown optimizer 'Adamz'"):
        model.build_model({**space.demo_point(), "optimizer": "Adamz"})


def _searched_labels(space_, evals: int = 4) -> set[str]:
    """The labels hyperopt actually draws (its ``misc.vals``) in a few real random-search trials."""
    from hyperopt import Trials, fmin, rand

    trials = Trials()
    fmin(lambda point: 0.0, space_, algo=rand.suggest, max_evals=evals, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    return set(trials.trials[0]["misc"]["vals"])


def test_without_coarse_labels_the_coarse_weight_is_not_searched():
    cifar10, cifar100 = space.load_space("hks.space", "cifar10"), space.load_space("hks.space", "cifar100")
    assert "coarse_labels_weight" not in _searched_labels(cifar10)
    assert "coarse_labels_weight" in _searched_labels(cifar100)
    assert all(space.sample_point(cifar10, seed)["coarse_labels_weight"] is None for seed in range(5))
    assert space.fingerprint(cifar100) == space.fingerprint(space.SPACE)
    assert space.fingerprint(cifar10) != space.fingerprint(cifar100)


def test_a_cifar10_point_builds_a_single_head_model():
    point = space.sample_point(space.load_space("hks.space", "cifar10"), 3)
    built = model.build_model(point, num_fine=10, num_coarse=None)
    assert list(built.output) == ["fine"]


def test_a_user_space_drops_the_coarse_weight_on_a_single_head_dataset(tmp_path):
    path = tmp_path / "user_space.py"
    path.write_text("from hyperopt import hp\nSPACE = {'x': hp.uniform('x', 0, 1), "
                    "'coarse_labels_weight': hp.uniform('coarse_labels_weight', 0.1, 0.7)}\n")
    assert _searched_labels(space.load_space(str(path), "cifar10")) == {"x"}
    assert _searched_labels(space.load_space(str(path), "cifar100")) == {"x", "coarse_labels_weight"}
    assert space.fingerprint(space.load_space(str(path))) == space.fingerprint(space.load_space(str(path), "cifar100"))


def test_the_demo_picture_draws_the_classic_space_base_demo_to_plot():
    point = space.classic_demo_point()
    assert (point["batch_size"], point["optimizer"], point["coarse_labels_weight"]) == (300, "Nadam", 0.2)
    assert (point["conv_dropout_drop_proba"], point["fc_dropout_drop_proba"], point["use_BN"]) == (0.175, 0.3, True)
    assert (point["first_conv"], point["residual"], point["nb_conv_pool_layers"]) == (4, 4, 3)
    assert (point["pooling_type"], point["activation"], point["one_more_fc"]) == ("inception", "elu", 1.0)
    built = model.build_model(point)
    assert type(built.optimizer).__name__ == "Nadam"
    assert built.get_compile_config()["loss_weights"] == {"fine": 1.0, "coarse": 0.2}
    # 4 residual units in each of the 3 blocks (start index 0): 3 x 4 x 2 residual convs, plus the block convs.
    convs = [layer for layer in built.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) >= 1 + 3 + 3 * 4 * 2


def test_model_demo_png_is_drawn_from_the_classic_point(tmp_path, monkeypatch):
    from hks import plotting

    drawn = []
    monkeypatch.setattr(plotting, "plot_point", lambda point, path, *heads: drawn.append((point, path, heads)))
    plotting.draw_demo(str(tmp_path), "cifar10")
    assert drawn == [(space.classic_demo_point(), tmp_path / "model_demo.png", (10, None))]
