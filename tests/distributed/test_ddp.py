"""2 gloo ranks under torchrun: DDP-averaged gradients == one process on the concatenated batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
from ddp_common import make_agent, make_batch, to_batch  # noqa: E402

from amago_fast.distributed import DistContext, rank_seed  # noqa: E402
from amago_fast.distributed.ddp import DDPLearner, all_reduce_sum, init_distributed  # noqa: E402

B, L = 6, 10
# Rank 0 gets rows 0-2 (full windows), rank 1 rows 3-5 (heavily padded): unequal valid
# counts, the case where naive per-rank masked means would NOT average to the global mean.
LENGTHS = [[10, 10, 10, 2, 5, 1], [7, 10, 3, 10, 10, 4]]


def torchrun(nproc: int, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize(
    "overrides",
    # AMAGO's DPG critic copy: DDP averages its carried-over gradients like every other
    [{}, {"dpg_critics": "amago"}],
    ids=["defaults", "amago-dpg-critics"],
)
def test_two_gloo_ranks_match_single_process_on_concatenated_batch(tmp_path, overrides):
    flats = [make_batch(B, L, LENGTHS[i], seed=i) for i in range(2)]
    for i, f in enumerate(flats):
        save_file(f, str(tmp_path / f"batch{i}.safetensors"))
    r = torchrun(2, os.path.join(HERE, "worker_ddp.py"), str(tmp_path), json.dumps(overrides))
    assert r.returncode == 0, r.stderr[-3000:]

    ref = make_agent(**overrides)
    ref_out = {}
    for i, f in enumerate(flats):
        ref.train_step(to_batch(f))
        for n, p in ref.named_parameters():
            if p.grad is not None:
                ref_out[f"step{i}.grad.{n}"] = p.grad.clone()
    ranks = [load_file(str(tmp_path / f"rank{k}.safetensors")) for k in range(2)]
    grads = [k for k in ref_out]
    assert len(grads) > 20
    for k in grads:
        for rk in ranks:
            torch.testing.assert_close(rk[k], ref_out[k], rtol=1e-4, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    # Parameters after 2 AdamW steps, incl. PopArt moments and target nets. atol 1e-5: the
    # attention key bias has an analytically zero gradient, and Adam rescales its
    # rounding noise (different summation order across ranks) to O(lr * noise/|noise|).
    for k, v in ref.state_dict().items():
        for rk in ranks:
            torch.testing.assert_close(rk[f"param.{k}"], v, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    # the update did something, and differs from training on rank 0's half alone
    half = make_agent(**overrides)
    half.train_step(to_batch({k: v[:3] for k, v in flats[0].items()}))
    w = "critics.out.weight" if "critics.out.weight" in dict(half.named_parameters()) else grads[0].split(".", 2)[2]
    assert not torch.allclose(half.state_dict()[w], ref.state_dict()[w])


def test_single_process_context_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    ctx = init_distributed("cpu")
    assert ctx == DistContext() and ctx.is_main and not ctx.distributed
    agent, ref = make_agent(), make_agent()
    flat = make_batch(4, 6, [6, 2, 3, 6], seed=3)
    DDPLearner(agent, ctx).train_step(to_batch(flat))
    ref.train_step(to_batch(flat))
    # the learner injects its reduction through the loss (no group: the local statistics)
    assert agent.loss.popart.stats_reduce is all_reduce_sum and ref.popart.stats_reduce is None
    for (n, a), b in zip(agent.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, msg=n)


def test_bad_arguments():
    with pytest.raises(ValueError, match="device"):
        init_distributed("tpu")
    assert rank_seed(5, 0) == 5 and len({rank_seed(5, r) for r in range(8)}) == 8
