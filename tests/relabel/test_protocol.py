"""The relabeler interface and the strategy names."""

import pytest

from amago_fast.relabel import HERRelabeler, HERStrategy, MultiGoalRelabeler, MultiGoalStrategy, Relabeler


def test_both_relabelers_satisfy_the_protocol():
    assert isinstance(HERRelabeler(), Relabeler)
    assert isinstance(MultiGoalRelabeler(num_goals=2), Relabeler)
    assert not isinstance(object(), Relabeler)


@pytest.mark.parametrize("name", ["final", "future", "episode"])
def test_her_strategies_by_name_or_enum(name):
    a, b = HERRelabeler(strategy=name), HERRelabeler(strategy=HERStrategy(name))
    assert a.strategy is b.strategy is HERStrategy(name) and a.strategy == name  # still a str
    assert len({s.code for s in HERStrategy}) == 3


def test_unknown_strategies_are_value_errors_naming_the_choices():
    with pytest.raises(ValueError, match="final"):
        HERRelabeler(strategy="later")
    with pytest.raises(ValueError, match="some"):
        MultiGoalRelabeler(num_goals=2, strategy="most")
    assert MultiGoalRelabeler(num_goals=2, strategy="all").strategy is MultiGoalStrategy.ALL
