"""train_classifiers: the shared loop of the classifier-fitting scripts."""

import pytest


def test_train_classifiers_fits_the_chosen_ones_and_refuses_strangers(monkeypatch, tmp_path):
    from tosc.errors import ConfigError
    from tosc.tasks import classifiers

    calls = []
    monkeypatch.setattr(classifiers, "train_classifier", lambda name, out, **kw: calls.append((name, out, kw)) or {"acc": 1.0})
    got = dict(classifiers.train_classifiers(["a", "b"], ["b"], zoo=tmp_path, epochs=3))
    assert got == {"b": {"acc": 1.0}} and calls == [("b", tmp_path / "tasks" / "b.pt", {"epochs": 3})]
    with pytest.raises(ConfigError, match="not an extra: c; known: a, b"):
        list(classifiers.train_classifiers(["a", "b"], ["c"], what="an extra"))
