"""ReplayBuffer.add_trajectory refuses NaN/inf (row C: they used to poison every weight)."""

import numpy as np
import pytest

from amago_fast import ReplayBuffer


def _traj(T=5, A=2, seed=0):
    g = np.random.default_rng(seed)
    return dict(
        obs={"x": g.normal(size=(T + 1, 3)).astype(np.float32)},
        rl2s=g.normal(size=(T + 1, 1 + A)).astype(np.float32),
        time_idxs=np.arange(T + 1),
        actions=g.uniform(-1, 1, (T, A)).astype(np.float32),
        rews=g.normal(size=T).astype(np.float32),
        dones=np.zeros(T, bool),
    )


@pytest.mark.parametrize("field,where", [("rews", (3,)), ("actions", (1, 0)), ("rl2s", (2, 1)), ("obs", (4, 2))])
def test_nan_or_inf_anywhere_is_refused_naming_the_field(field, where):
    buf = ReplayBuffer({"x": ((3,), np.float32)}, 2, capacity=100)
    t = _traj()
    arr = t["obs"]["x"] if field == "obs" else t[field]
    arr[where] = np.inf if field == "actions" else np.nan
    with pytest.raises(ValueError, match=("obs\\['x'\\]" if field == "obs" else field) + " row"):
        buf.add_trajectory(**t)
    assert buf.num_trajectories == 0
    assert buf.add_trajectory(**t, nonfinite="drop") == -1 and buf.dropped_nonfinite == 1
    assert buf.num_trajectories == 0
    assert buf.add_trajectory(**_traj(seed=1)) >= 0 and buf.num_trajectories == 1
    with pytest.raises(ValueError, match="nonfinite"):
        buf.add_trajectory(**_traj(seed=2), nonfinite="skip")
