"""Train amago_fast on your own gymnasium env, then act with the trained policy.

python examples/custom_env.py [RUN_DIR] [TOTAL_STEPS]      # CI: a few hundred steps
"""

import sys

import gymnasium as gym
import numpy as np

import amago_fast as af


class Cue(gym.Env):
    """The first observation shows a side (-1 or +1); answer it at step 4 to get reward 1."""

    observation_space, action_space = gym.spaces.Box(-1, 1, (1,), np.float32), gym.spaces.Discrete(2)
    max_episode_steps = 4  # an episode limit the trainer can read (sizes the agent's context)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.side = 0, int(self.np_random.integers(2))
        return np.array([2.0 * self.side - 1], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == self.max_episode_steps
        reward = float(done and action == self.side)
        return np.zeros(1, np.float32), reward, done, False, {"success": reward > 0} if done else {}


af.register_env("cue", Cue)
run_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/cue"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
cfg = af.TrainerConfig(env="cue", total_steps=steps, num_envs=4, learning_starts=64, eval_every=0, progress=False)
trainer = af.Trainer(run_dir, cfg, af.AgentConfig(**af.CPU_AGENT))
print("last evaluation:", trainer.run())
trainer.close()

policy = af.load_policy(run_dir)  # the latest checkpoint, ready to act
env = Cue()
(obs, _), reward, done = env.reset(seed=0), None, False
policy.reset()
while not done:  # predict gets the previous reward: the agent learns in context from it
    obs, reward, done, _, info = env.step(policy.predict(obs, reward))
print("one episode with load_policy: success", info["success"])
