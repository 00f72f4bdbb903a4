"""Training (mlcc/learn/train/): the default, the weighted families, the other
formulations and the trial sets."""

from __future__ import annotations

import numpy as np

from mlcc import knobs
from mlcc.learn.report import report
from mlcc.learn.train import train, variants
from mlcc.pipeline import CLANG


def test_the_default_is_best_on_average_over_projects_not_on_one_huge_unit():
    # project a: one huge unit that only "big-win" shrinks; projects b and c: "steady"
    # saves 2 % everywhere, "big-win" nothing; a free pipeline (passes around clang's)
    # saves 3 % everywhere.
    steady, big_win, free = "clang[no-licm]", "clang[mergefunc]", "function(sroa),clang[no-licm]"
    units = [{"project": p, "id": f"{p}{i}"} for p, i in (("a", 0), ("b", 0), ("b", 1), ("c", 0))]
    clang = np.array([100_000.0, 1_000.0, 1_000.0, 1_000.0])
    R = np.array([[1.0, 0.99, 0.97, 0.97], [1.0, 0.98, 1.0, 0.97], [1.0, 0.98, 1.0, 0.97],
                  [1.0, 0.98, 1.0, 0.97]])
    data = train.Dataset(units, np.zeros((4, 4)), R, clang, [CLANG, steady, big_win, free])
    assert int(np.argmin((R * clang[:, None])[:, :3].sum(axis=0))) == 2  # by total bytes: big-win
    assert train.default_candidate(data) == 3  # the best fixed pipeline, free ones included
    assert train.default_candidate(data, tuned_only=True) == 1
    # the default, which runs on almost every file, is a tuned clang pipeline
    assert train.default_first(data.candidates, data) == [steady, CLANG, big_win, free]
    # the margin is against the default (candidate 0): 0.975 does not beat 0.98 by 0.01, 0.9 does
    assert list(train.choose(np.array([[0.98, 1.0, 0.975], [0.98, 1.0, 0.9]]), 0.01)) == [0, 2]


def test_a_by_bytes_family_weighs_each_unit_by_its_bytes():
    # units the features cannot tell apart: one of 1,000 bytes that "a" shrinks by 10 %
    # and ten of 10 bytes that it leaves alone. The prediction is each fit's mean.
    R = np.array([[1.0, 0.9]] + [[1.0, 1.0]] * 10)
    clang = np.array([1_000.0] + [10.0] * 10)
    units = [{"project": "p", "id": f"u{i}"} for i in range(11)]
    data = train.Dataset(units, np.ones((11, 3)), R, clang, [CLANG, "a"])
    by_units = train.fit_model("extra-trees", data).predict(train.transform(data.X[:1]))[0, 1]
    by_bytes = train.fit_model("extra-trees" + train.BY_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(by_units - (1.0 - 0.1 / 11)) < 1e-9
    assert abs(by_bytes - (1.0 - 100.0 / 1100.0)) < 1e-9
    # capped at the 99th percentile of the bytes: 10 + 0.9 * 990 = 901 for the large unit
    capped = train.fit_model("extra-trees" + train.BY_CAPPED_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(capped - (1.0 - 90.1 / 1001.0)) < 1e-9
    assert not any(f.endswith(train.BY_CAPPED_BYTES) for f in train.FAMILIES)
    # by code bytes: the large unit is mostly data, 100 bytes of code against ten times 10
    data.code = np.array([100.0] + [10.0] * 10)
    by_code = train.fit_model("extra-trees" + train.BY_CODE_BYTES, data).predict(
        train.transform(data.X[:1]))[0, 1]
    assert abs(by_code - (1.0 - 10.0 / 200.0)) < 1e-9
    assert set(train.TREE_FAMILIES) < set(train.FAMILIES)
    assert {"extra-trees-by-bytes", "random-forest-by-bytes"} < set(train.FAMILIES)


def test_the_other_formulations_score_candidates_like_the_size_regressors():
    # feature 0 tells the units apart: on the first kind candidate "a" saves 20 %, on the
    # second it costs 20 % and candidate "b" saves 0.05 % (a tie with the default)
    X = np.array([[5.0, 1.0]] * 20 + [[0.0, 1.0]] * 20)
    R = np.array([[1.0, 0.8, 1.0]] * 20 + [[1.0, 1.2, 0.9995]] * 20)
    units = [{"project": f"p{i % 4}", "id": f"u{i}"} for i in range(40)]
    data = train.Dataset(units, X, R, np.full(40, 100.0), [CLANG, "a", "b"])
    for family in variants.FORMULATIONS:
        pred = variants.fit_variant(family, data).predict(train.transform(X))
        assert pred.shape == R.shape
        assert list(train.choose(pred, 0.005)) == [1] * 20 + [0] * 20, family
    difference = variants.fit_variant(variants.FORMULATIONS[0], data).predict(train.transform(X[:1]))
    assert abs(difference[0, 1] - (0.8 - 1.0)) < 1e-9 and difference[0, 0] == 0.0
    pred, _ = train.cross_validate(data, variants.FORMULATIONS[1], folds=4, fit=variants.fit_variant)
    assert pred.shape == R.shape


def test_the_best_fixed_set_is_chosen_together_not_one_by_one():
    # "broad" saves 5 % on both units; "a" saves 8 % on the first only, "b" on the second only:
    # alone "broad" is best, but two trials are best spent on "a" and "b".
    R = np.array([[1.0, 0.95, 0.92, 1.0], [1.0, 0.95, 1.0, 0.92]])
    data = train.Dataset([{"project": "p", "id": "u"}, {"project": "q", "id": "v"}], np.ones((2, 3)), R,
                         np.array([100.0, 100.0]), [CLANG, "broad", "a", "b"])
    assert train.best_fixed_set(data, 1) == (1,)
    assert train.best_fixed_set(data, 2) == (2, 3)
    # what the model file carries for -fmlcc-trials=K: the set for each K, not a ranking
    assert train.trial_sets(data) == [["broad"], ["a", "b"], ["broad", "a", "b"]]
    assert abs(report.set_gain(data, (2, 3)) - 8.0) < 1e-9


def test_trial_sets_weigh_what_their_builds_cost():
    # "dear" saves 6 % and takes three times clang's seconds, "cheap" saves 5.8 % in half
    # of them: by size alone "dear" is the trial, at the CPU price "cheap" is
    R = np.array([[1.0, 0.94, 0.942], [1.0, 0.94, 0.942]])
    T = np.array([[1.0, 3.0, 0.5], [2.0, 6.0, 1.0]])
    data = train.Dataset([{"project": "p", "id": "u"}, {"project": "q", "id": "v"}], np.ones((2, 3)), R,
                         np.array([100.0, 100.0]), [CLANG, "dear", "cheap"], T=T)
    assert train.set_cost(data, (1,)) == 3.0 and train.set_cost(data, (2,)) == 0.5
    assert train.best_fixed_set(data, 1, price=0.0) == (1,)
    assert train.best_fixed_set(data, 1) == (2,)
    assert train.trial_sets(data)[0] == ["cheap"]
    # a unit without a time for one of the set's builds is left out of its cost
    data.T[1, 1] = np.nan
    assert train.set_cost(data, (1,)) == 3.0 and train.set_cost(data, (1, 2)) == 3.5
    # without any times, the price weighs nothing: sets by size alone
    untimed = train.Dataset(data.units, data.X, R, data.clang, data.candidates)
    assert train.set_cost(untimed, (1,)) == 0.0
    assert train.best_fixed_set(untimed, 1) == (1,)


def test_candidates_that_share_an_opt_run_cost_it_once():
    # "base" and its code generation twin (the same opt part, `knobs.opt_part`): the twin's
    # rows recorded its code generation's seconds (1.0 of 3.0), the base's did not. Both in
    # a set cost the base's 3.0 and the twin's code generation, 1.0.
    base = "function(sroa),clang[mergefunc]"
    twin = "function(sroa),clang[mergefunc,machine-outliner]"
    other = "clang[mergefunc,no-lsr,jump-tables-16]"  # its own opt part: clang[mergefunc]
    assert knobs.opt_part(twin) == base and knobs.opt_part(other) == "clang[mergefunc]"
    R = np.array([[1.0, 0.95, 0.94, 0.96]] * 2)
    T = np.array([[2.0, 3.0, 3.0, 2.5]] * 2)
    C = np.array([[np.nan, np.nan, 1.0, 1.5]] * 2)
    data = train.Dataset([{"project": "p", "id": "u"}, {"project": "q", "id": "v"}], np.ones((2, 3)), R,
                         np.array([100.0, 100.0]), [CLANG, base, twin, other], T=T, C=C)
    assert train.set_cost(data, (1, 2)) == 2.0  # (3 + 1) / 2
    assert train.set_cost(data, (2,)) == 1.5 and train.set_cost(data, (1, 3)) == 2.75
    # both recorded (opt 1.0 and 2.0): one opt run of their mean, 1.5, whatever the order
    data.C[:, 1] = 2.0
    assert train.set_cost(data, (1, 2)) == 2.25 and train.set_cost(data, (2, 1)) == 2.25
    # neither recorded: no saving is assumed
    data.C[:] = np.nan
    assert train.set_cost(data, (1, 2)) == 3.0
    # the searches' default is never a twin with knobs its level may not add
    assert not knobs.barred(base, "z")
