"""amago_fast's adapters inside the real AMAGO (AMAGO_SRC): the attention type in AMAGO's
own Transformer, and both adapters in a real AMAGO `Experiment` on AMAGO's T-Maze."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.usefixtures("no_dynamo")


def _encoders(real_amago, seed=0):
    from amago.nets import transformer
    from amago.nets.traj_encoders import TformerTrajEncoder

    from amago_fast.compat.amago_attention import make_amago_attention_class

    ours_cls = make_amago_attention_class(transformer.SelfAttention)
    kw = dict(tstep_dim=12, max_seq_len=9, d_model=32, n_heads=4, d_ff=64, n_layers=2, dropout_ff=0.0, dropout_emb=0.0)
    torch.manual_seed(seed)
    ref = TformerTrajEncoder(attention_type=transformer.VanillaAttention, **kw)
    ours = TformerTrajEncoder(attention_type=ours_cls, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref.eval(), ours.eval(), ours_cls


def test_attention_type_in_amagos_transformer_matches_its_vanilla_attention(real_amago):
    ref, ours, ours_cls = _encoders(real_amago)
    assert issubclass(ours_cls, real_amago.nets.transformer.SelfAttention)
    B, L = 3, 9
    seq = torch.randn(B, L, 12)
    t = torch.arange(L).repeat(B, 1)[..., None]
    x_ref, x_ours = seq.clone().requires_grad_(True), seq.clone().requires_grad_(True)
    out_ref, _ = ref(x_ref, time_idxs=t)
    out_ours, _ = ours(x_ours, time_idxs=t)
    torch.testing.assert_close(out_ours, out_ref, rtol=1e-5, atol=1e-5)
    (out_ref**2).sum().backward()
    (out_ours**2).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-5)


def test_attention_type_with_amagos_kv_cache_matches_the_full_forward(real_amago):
    # AMAGO's acting path: its own Cache (unused slots are NaN on purpose) and hidden state
    ref, ours, _ = _encoders(real_amago, seed=1)
    B, L = 2, 9
    seq = torch.randn(B, L, 12)
    t = torch.arange(L).repeat(B, 1)[..., None]
    with torch.no_grad():
        full, _ = ref(seq, time_idxs=t)
        h = ours.init_hidden_state(B, torch.device("cpu"))
        steps = []
        for i in range(L):
            y, h = ours(seq[:, i : i + 1], time_idxs=t[:, i : i + 1], hidden_state=h)
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-5)


def test_both_adapters_train_inside_a_real_amago_experiment(real_amago, tmp_path):
    import gymnasium

    if int(gymnasium.__version__.split(".")[0]) >= 1:
        pytest.skip(
            "AMAGO's Experiment needs its pinned gymnasium<=0.29.1 (its wrappers rely on attribute "
            f"forwarding that gymnasium {gymnasium.__version__} removed); .ci/run runs this in .venv-amago"
        )
    path = os.pathsep.join(p for p in (os.environ["AMAGO_SRC"], os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    results = {}
    for mode in ("adapters", "reference"):
        out = tmp_path / mode
        out.mkdir()
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "amago_experiment_run.py"), str(out), mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd=str(tmp_path),
        )
        assert r.returncode == 0, r.stderr[-3000:]
        results[mode] = json.loads((out / "result.json").read_text())
    ours, ref = results["adapters"], results["reference"]
    assert ours["dataset"] == "AmagoReplayDataset" and ours["attention"] == ["AmagoFlashAttention"]
    assert ref["dataset"] == "DiskTrajDataset" and ref["attention"] == ["VanillaAttention"]
    assert ours["updates"] == ref["updates"] > 0 and ours["losses_finite"]
    assert ours["trajectories"] > 0
