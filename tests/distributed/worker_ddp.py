"""torchrun worker for test_ddp.py (not a test module): N gloo ranks, each takes its
slice of the saved batches, runs DDPLearner.train_step on each, saves grads + params.
argv: DATA_DIR AGENT_OVERRIDES_JSON."""

import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

from amago_fast.distributed import DDPLearner, init_distributed

sys.path.insert(0, os.path.dirname(__file__))
from ddp_common import make_agent, split_rows  # noqa: E402

data_dir = sys.argv[1]
ctx = init_distributed("cpu")
torch.set_num_threads(1)
agent = make_agent(**json.loads(sys.argv[2]))  # AgentConfig overrides
learner = DDPLearner(agent, ctx)
batches = [load_file(os.path.join(data_dir, f"batch{i}.safetensors")) for i in range(2)]
out = {}
for i, flat in enumerate(batches):
    learner.train_step(split_rows(flat, ctx.rank, ctx.world_size))
    for n, p in agent.named_parameters():
        if p.grad is not None:
            out[f"step{i}.grad.{n}"] = p.grad.clone()
out.update({f"param.{k}": v.clone() for k, v in agent.state_dict().items()})
save_file(out, os.path.join(data_dir, f"rank{ctx.rank}.safetensors"))
torch.distributed.barrier()
torch.distributed.destroy_process_group()
