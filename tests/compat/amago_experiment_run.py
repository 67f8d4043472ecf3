"""Run a real AMAGO `Experiment` on AMAGO's own T-Maze with both amago_fast adapters in it.

    python amago_experiment_run.py OUT_DIR {adapters|reference}

adapters: `AmagoReplayDataset` as the dataset and `AmagoFlashAttention` as the
Transformer's attention type; reference: AMAGO's own `DiskTrajDataset` and
`VanillaAttention`. Both train a tiny agent for a few epochs on CPU and write
OUT_DIR/result.json (updates made, losses finite, the dataset and attention classes
actually used). Run by tests/compat/test_amago_real_adapters.py with AMAGO_SRC on the path.
"""

from __future__ import annotations

import json
import math
import os
import sys
from functools import partial

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # torch.compile on CPU only adds minutes


def main(out_dir: str, mode: str) -> None:
    import torch

    torch.set_num_threads(1)
    import amago
    from amago.envs import AMAGOEnv
    from amago.envs.builtin.tmaze import TMazeAltPassive
    from amago.loading import DiskTrajDataset
    from amago.nets import transformer
    from amago.nets.traj_encoders import TformerTrajEncoder
    from amago.nets.tstep_encoders import FFTstepEncoder

    from amago_fast.compat import AmagoFlashAttention, AmagoReplayDataset

    H = 6
    if mode == "adapters":
        dataset = AmagoReplayDataset(dset_root=out_dir, dset_name="tmaze", capacity=50_000, seed=0)
        attention = AmagoFlashAttention
    else:
        dataset = DiskTrajDataset(dset_root=out_dir, dset_name="tmaze", dset_max_size=50_000)
        attention = transformer.VanillaAttention
    make_env = lambda: AMAGOEnv(
        TMazeAltPassive(corridor_length=H, penalty=-1.0 / H),  # noqa: E731
        env_name=f"TMazePassive-H{H}",
    )
    traj = partial(TformerTrajEncoder, d_model=32, n_heads=2, d_ff=64, n_layers=1, attention_type=attention)
    tstep = partial(FFTstepEncoder, n_layers=1, d_hidden=32, d_output=32)
    agent = partial(amago.agent.Agent, reward_multiplier=10.0)
    exp = amago.Experiment(
        run_name=f"tmaze_{mode}",
        ckpt_base_dir=out_dir,
        max_seq_len=H + 1,
        traj_save_len=H + 1,
        dataset=dataset,
        tstep_encoder_type=tstep,
        traj_encoder_type=traj,
        agent_type=agent,
        make_train_env=make_env,
        make_val_env=make_env,
        parallel_actors=2,
        env_mode="sync",
        val_timesteps_per_epoch=H + 1,
        epochs=3,
        train_timesteps_per_epoch=2 * (H + 1),
        train_batches_per_epoch=8,
        batch_size=4,
        dloader_workers=0,
        val_interval=2,
        ckpt_interval=None,
        log_to_wandb=False,
        verbose=False,
        lr_warmup_steps=1,
    )
    exp.start()
    losses = []
    orig = exp.train_step

    def counted(batch, log_step):
        out = orig(batch, log_step)
        losses.append(float(out["Loss"].detach()))
        return out

    exp.train_step = counted
    exp.learn()
    # the acting path: the policy's cache and AMAGO's own rollout loop ran the attention
    attn_types = sorted({type(m).__name__ for m in exp.policy.modules() if isinstance(m, transformer.SelfAttention)})
    result = {
        "updates": len(losses),
        "losses_finite": all(math.isfinite(x) for x in losses),
        "dataset": type(exp.dataset).__name__,
        "attention": attn_types,
        "trajectories": getattr(getattr(exp.dataset, "buffer", None), "num_trajectories", None),
    }
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
