"""Actor and critic heads, evaluated for G discount factors at once, and PopArt.

The heads follow AMAGO's (`amago.nets.actor_critic`): the same MLP shapes, the same
discrete probability clipping, the same tanh-Gaussian log-likelihood, a continuous
critic that takes the discount as an input feature, and PopArt as an affine layer
shared by the online and target critics. `tests/compat/test_amago_parity.py` checks
each against the real AMAGO.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def gamma_features(gammas: Sequence[float]) -> torch.Tensor:
    """(G,) the critic's discount input: symlog of the effective horizon 1 / (1 - gamma)."""
    g = torch.as_tensor(list(gammas), dtype=torch.float32)
    return symlog(1.0 / (1.0 - g).clamp(1e-6, 1.0))


class ActionDist:
    """A batch of per-gamma action distributions. Actions are stored-format vectors:
    one-hot (Discrete), in [-1, 1] (Box), {0, 1} (MultiBinary); shape (..., G, A).

    Discrete probabilities are clipped to [prob_low, prob_high] and renormalised (by a
    detached sum, then exactly) as AMAGO does, so no action's probability collapses.
    """

    def __init__(
        self,
        kind: str,
        params: torch.Tensor,
        log_std_range=(-5.0, 2.0),
        prob_clip=(1e-3, 0.99),
        logp_clip: float = 0.99,
    ):
        self.kind = kind
        if kind == "tanh_gaussian":
            mean, raw_std = params.chunk(2, dim=-1)
            lo, hi = log_std_range
            self.mean = mean
            self.std = (lo + 0.5 * (hi - lo) * (torch.tanh(raw_std) + 1)).exp()
            self.logp_clip = logp_clip
        else:
            self.logits = params  # (..., G, A)
            self.prob_clip = prob_clip

    @property
    def probs(self) -> torch.Tensor:
        if self.kind == "discrete":
            clipped = self.logits.softmax(-1).clamp(*self.prob_clip)
            safe = clipped / clipped.sum(-1, keepdim=True).detach()
            return safe / safe.sum(-1, keepdim=True)
        if self.kind == "multibinary":
            return torch.sigmoid(self.logits)
        raise TypeError("probs is defined for discrete and multibinary actions only")

    def log_prob(self, a: torch.Tensor) -> torch.Tensor:
        """a: (..., G or 1, A) -> (..., G). Discrete a is one-hot (its argmax is used);
        MultiBinary averages over action dims, Box sums (as AMAGO)."""
        if self.kind == "discrete":
            eps = torch.finfo(self.logits.dtype).eps
            logp = self.probs.clamp(eps, 1 - eps).log()
            idx = a.argmax(-1, keepdim=True).expand(*logp.shape[:-1], 1)
            return logp.gather(-1, idx).squeeze(-1)
        if self.kind == "multibinary":
            return -F.binary_cross_entropy_with_logits(self.logits, a.expand_as(self.logits), reduction="none").mean(-1)
        u = torch.atanh(a.clamp(-self.logp_clip, self.logp_clip))
        log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
        lp = torch.distributions.Normal(self.mean, self.std).log_prob(u) - log_det
        return lp.sum(-1)

    def sample(self, reparam: bool = False) -> torch.Tensor:
        """(..., G, A). reparam: differentiable sample (tanh-Gaussian rsample; straight-
        through for MultiBinary; hard Gumbel-softmax, temperature 0.5, for Discrete, as
        AMAGO's multi-task agent). The AMAGO agent's discrete DPG uses probs instead."""
        if reparam:
            if self.kind == "discrete":
                return F.gumbel_softmax(self.probs.clamp_min(1e-30).log(), tau=0.5, hard=True, dim=-1)
            if self.kind == "multibinary":
                p = self.probs
                a = torch.bernoulli(p.detach())
                return a + p - p.detach()
            return torch.tanh(torch.distributions.Normal(self.mean, self.std).rsample())
        return self.sample_n(1)[0]

    @torch.no_grad()
    def sample_n(self, k: int) -> torch.Tensor:
        """k non-differentiable samples in one draw, (k, ..., G, A), consuming the RNG as
        torch.distributions' `sample((k,))` does (so seeded draws match AMAGO's)."""
        if self.kind == "discrete":
            p = self.probs
            A = p.shape[-1]
            idx = torch.multinomial(p.reshape(-1, A), k, True).T.reshape(k, *p.shape[:-1])
            return F.one_hot(idx, A).to(p.dtype)
        if self.kind == "multibinary":
            p = self.probs
            return torch.bernoulli(p.expand(k, *p.shape))
        shape = (k, *self.mean.shape)
        return torch.tanh(torch.normal(self.mean.expand(shape), self.std.expand(shape)))

    def mode(self) -> torch.Tensor:
        if self.kind == "discrete":
            return F.one_hot(self.logits.argmax(-1), self.logits.shape[-1]).to(self.logits.dtype)
        if self.kind == "multibinary":
            return (self.logits > 0).to(self.logits.dtype)
        return torch.tanh(self.mean)


def buffer_action_for_critic(kind: str, a: torch.Tensor, prob_clip=(1e-3, 0.99)) -> torch.Tensor:
    """Stored actions as the critic sees them: clipped to the action range, and (discrete)
    a one-hot smoothed by the policy's probability clip, as AMAGO's `action_from_buffer`."""
    if kind == "discrete":
        c = a.clamp(0.0, 1.0).clamp(*prob_clip)
        return c / c.sum(-1, keepdim=True)
    if kind == "multibinary":
        return a.clamp(0.0, 1.0)
    return a.clamp(-1.0, 1.0)


class ActorHead(nn.Module):
    """s (..., D) -> ActionDist over (..., G, A)."""

    def __init__(self, d_in: int, d_hidden: int, n_layers: int, action_dim: int, n_gammas: int, kind: str):
        super().__init__()
        self.kind, self.G, self.A = kind, n_gammas, action_dim
        width = 2 * action_dim if kind == "tanh_gaussian" else action_dim
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(n_layers):
            layers += [nn.Linear(d, d_hidden), nn.LeakyReLU()]
            d = d_hidden
        layers.append(nn.Linear(d, n_gammas * width))
        self.net = nn.Sequential(*layers)

    def forward(self, s: torch.Tensor) -> ActionDist:
        out = self.net(s)
        return ActionDist(self.kind, out.view(*s.shape[:-1], self.G, -1))


CRITIC_INITS = ("amago", "linear")


class EnsembleLinear(nn.Module):
    """C independent linear layers applied in one batched matmul. x: (C, N, in) -> (C, N, out).

    init "amago": as AMAGO's critic ensemble (einops EinMix), weight U(+-sqrt(3 / d_in)), so
    variance 1 / d_in; "linear": nn.Linear's U(+-1 / sqrt(d_in)), a third of that variance.
    Bias U(+-1 / sqrt(d_in)) in both.
    """

    def __init__(self, C: int, d_in: int, d_out: int, init: str = "amago"):
        super().__init__()
        if init not in CRITIC_INITS:
            raise ValueError(f"init must be one of {CRITIC_INITS}, got {init!r}")
        b_bound = 1.0 / math.sqrt(d_in)
        w_bound = math.sqrt(3.0 / d_in) if init == "amago" else b_bound
        self.weight = nn.Parameter(torch.empty(C, d_in, d_out).uniform_(-w_bound, w_bound))
        self.bias = nn.Parameter(torch.empty(C, 1, d_out).uniform_(-b_bound, b_bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def shared_input(self, x: torch.Tensor, cols: Optional[slice] = None) -> torch.Tensor:
        """The layer on one input shared by all C members: x (N, in) -> (C, N, out), equal to
        forward(x expanded to (C, N, in)). One (N, in) x (in, C out) GEMM instead of C
        GEMMs on C copies of x, and its input gradient comes out already summed over C.
        cols: only these input rows of the weight (and x has that many columns)."""
        w = self.weight if cols is None else self.weight[:, cols]  # (C, in, out)
        C, d_in, d_out = w.shape
        flat = torch.addmm(self.bias.reshape(C * d_out), x, w.transpose(0, 1).reshape(d_in, C * d_out))
        return flat.view(-1, C, d_out).transpose(0, 1)  # a strided (C, N, out) view


class CriticEnsemble(nn.Module):
    """C critics giving raw (pre-PopArt) Q for all G gammas: forward(s, a) -> (..., C, G).

    s: (..., D); a: (..., Ga, A) with Ga in {1, G}: gamma g's Q is taken at action
    a[..., g, :] (or at the one shared action). Discrete: one network outputs Q of every
    (gamma, action) pair and `a` weights them (a one-hot, or the policy's probabilities
    for an exact expectation); `q_table(s)` gives the (..., C, G, A) table itself.
    Continuous / MultiBinary: the network reads [s, symlog(1 / (1 - gamma)), a] and
    outputs one value, so each gamma is a separate input row. With n_out > 1 (the
    multi-task agent's value bins) it outputs n_out logits: (..., C, G, n_out).
    """

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        n_layers: int,
        action_dim: int,
        gammas: Sequence[float],
        n_critics: int,
        discrete: bool,
        n_out: int = 1,
        init: str = "amago",
    ):
        super().__init__()
        G = len(gammas)
        self.discrete, self.G, self.A, self.C, self.n_out = discrete, G, action_dim, n_critics, n_out
        if discrete and n_out != 1:
            raise ValueError("n_out > 1 needs the action-input critic (discrete=False)")
        if not discrete and n_layers < 1:
            raise ValueError(f"n_layers (head_layers) must be >= 1 for an action-input critic, got {n_layers}")
        self.register_buffer("gamma_feat", gamma_features(gammas), persistent=False)
        dims = [d_in + (0 if discrete else 1 + action_dim)] + [d_hidden] * n_layers
        self.hidden = nn.ModuleList(EnsembleLinear(n_critics, a, b, init) for a, b in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(n_critics, dims[-1], G * action_dim if discrete else n_out, init)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, C, out)
        first, *rest = [*self.hidden, self.out]
        h = first.shared_input(x)  # (C, N, width)
        for layer in rest:
            h = layer(F.leaky_relu(h))
        return h.transpose(0, 1)

    def q_table(self, s: torch.Tensor) -> torch.Tensor:
        """Discrete only: (..., D) -> (..., C, G, A)."""
        lead = s.shape[:-1]
        return self._mlp(s.reshape(-1, s.shape[-1])).view(*lead, self.C, self.G, self.A)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if a.shape[-2] not in (1, self.G):
            raise ValueError(f"a must have shape (..., 1 or {self.G}, {self.A}), got {tuple(a.shape)}")
        if self.discrete:
            return (self.q_table(s) * a.unsqueeze(-3)).sum(-1)  # (..., C, G)
        lead, D = s.shape[:-1], s.shape[-1]
        a = a.expand(*lead, self.G, self.A).clamp(-0.999, 0.999)
        feat = self.gamma_feat.to(s.dtype).view(self.G, 1).expand(*lead, self.G, 1)
        fa = torch.cat([feat, a], dim=-1).reshape(-1, 1 + self.A)  # (N G, 1+A)
        # The first layer on [s, gamma feature, a] is W_s s + W_fa [feat, a] + b: s is the
        # same for all G rows of a step, so its product is taken once per step, not G times.
        first = self.hidden[0]
        s_part = first.shared_input(s.reshape(-1, D), slice(0, D))  # (C, N, hidden), bias included
        fa_part = torch.bmm(fa.unsqueeze(0).expand(self.C, *fa.shape), first.weight[:, D:])
        h = F.leaky_relu((s_part.unsqueeze(2) + fa_part.view(self.C, -1, self.G, fa_part.shape[-1])).flatten(1, 2))
        for layer in self.hidden[1:]:
            h = F.leaky_relu(layer(h))
        q = self.out(h).transpose(0, 1).reshape(*lead, self.G, self.C, self.n_out)
        q = q.transpose(-2, -3)  # (..., C, G, n_out)
        return q[..., 0] if self.n_out == 1 else q


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHotValues(nn.Module):
    """Values as a categorical distribution over fixed bins (AMAGO-2, after Dreamer-V3).

    Bin centres are evenly spaced on symlog(value) over [symlog(vmin), symlog(vmax)]
    (or on the value itself with symlog=False). `value(logits)` is symexp of the expected
    bin centre; `labels(y)` the two-hot target: mass on the two bins around symlog(y),
    split by distance. Values are in reward_multiplier units, as the TD targets.
    """

    def __init__(self, bins: int, vmin: float, vmax: float, use_symlog: bool = True):
        super().__init__()
        if bins < 2 or not vmin < vmax:
            raise ValueError(f"need bins >= 2 and vmin < vmax, got bins={bins}, vmin={vmin}, vmax={vmax}")
        self.use_symlog = use_symlog
        f = symlog if use_symlog else (lambda x: x)
        lo, hi = f(torch.tensor(float(vmin))), f(torch.tensor(float(vmax)))
        self.register_buffer("centres", torch.linspace(float(lo), float(hi), bins), persistent=False)

    def _to_bins(self, y: torch.Tensor) -> torch.Tensor:
        return symlog(y) if self.use_symlog else y

    def value(self, logits: torch.Tensor) -> torch.Tensor:  # (..., bins) -> (...)
        e = (logits.softmax(-1) * self.centres.to(logits.dtype)).sum(-1)
        return symexp(e) if self.use_symlog else e

    def labels(self, y: torch.Tensor) -> torch.Tensor:  # (...) -> (..., bins)
        z = self._to_bins(y)[..., None]
        c = self.centres.to(z.dtype)
        n = c.numel()
        below = ((c <= z).sum(-1) - 1).clamp(0, n - 1)
        above = (n - (c > z).sum(-1)).clamp(0, n - 1)
        same = (below == above)[..., None]
        d_below = torch.where(same, torch.ones_like(z), (c[below][..., None] - z).abs())
        d_above = torch.where(same, torch.ones_like(z), (c[above][..., None] - z).abs())
        total = d_below + d_above
        return (F.one_hot(below, n) * (d_above / total) + F.one_hot(above, n) * (d_below / total)).to(z.dtype)


StatsReduce = Callable[[torch.Tensor], torch.Tensor]


class PopArt(nn.Module):
    """Per-gamma PopArt (van Hasselt et al. 2016) as AMAGO uses it: an affine layer
    w * q + b on the raw critic outputs, shared by the online and target critics.

        norm_out(q)   = w q + b                      the normalised prediction
        denorm_out(q) = sigma (w q + b) + mu          the value in reward units
        normalize(y)  = (y - mu) / sigma               for targets

    `update(y)` moves (mu, nu) towards the batch's target moments with the debiased step
    beta_t = beta / (1 - (1 - beta)^t) and rescales (w, b) so denorm_out is unchanged
    (Preserve Outputs). `stats_reduce`, if set, maps the local statistics vector
    [sum y (G), sum y^2 (G), count] to the job-wide one (data-parallel learners pass an
    all-reduce). Disabled: every map is the identity and update does nothing.
    """

    def __init__(
        self,
        n_gammas: int,
        beta: float,
        enabled: bool,
        init_nu: float = 100.0,
        stats_reduce: Optional[StatsReduce] = None,
    ):
        super().__init__()
        self.beta, self.enabled, self.stats_reduce = beta, enabled, stats_reduce
        self.register_buffer("mu", torch.zeros(n_gammas))
        self.register_buffer("nu", torch.full((n_gammas,), float(init_nu)))
        self.register_buffer("w", torch.ones(n_gammas))
        self.register_buffer("b", torch.zeros(n_gammas))
        self.register_buffer("t", torch.ones(n_gammas))

    @property
    def sigma(self) -> torch.Tensor:
        return (self.nu - self.mu.pow(2)).clamp(1e-4, 1e8).sqrt().clamp(1e-4, 1e6)

    def norm_out(self, q: torch.Tensor) -> torch.Tensor:  # (..., G)
        return self.w * q + self.b if self.enabled else q

    def denorm_out(self, q: torch.Tensor) -> torch.Tensor:  # (..., G)
        return self.sigma * (self.w * q + self.b) + self.mu if self.enabled else q

    def normalize(self, y: torch.Tensor) -> torch.Tensor:  # (..., G)
        return (y - self.mu) / self.sigma if self.enabled else y

    def denormalize(self, q_norm: torch.Tensor) -> torch.Tensor:  # (..., G) normalised -> reward units
        return q_norm * self.sigma + self.mu if self.enabled else q_norm

    @torch.no_grad()
    def update(self, targets: torch.Tensor) -> None:
        """targets: (N, G) unnormalised TD targets on valid steps."""
        if not self.enabled:
            return
        t = targets.to(self.mu.dtype)
        stats = torch.cat([t.sum(0), t.pow(2).sum(0), t.new_tensor([float(t.shape[0])])])
        if self.stats_reduce is not None:
            stats = self.stats_reduce(stats)
        G = self.mu.shape[0]
        n = float(stats[-1])
        if n == 0 or not bool(torch.isfinite(stats).all()):
            return  # nothing to learn from, or non-finite targets that would poison mu/nu
        mean, sq_mean = stats[:G] / n, stats[G : 2 * G] / n
        self.t += 1
        beta_t = self.beta / (1.0 - (1.0 - self.beta) ** self.t)
        old_mu, old_sigma = self.mu.clone(), self.sigma
        self.mu.copy_((1.0 - beta_t) * self.mu + beta_t * mean)
        self.nu.copy_((1.0 - beta_t) * self.nu + beta_t * sq_mean)
        new_sigma = self.sigma
        self.w.mul_(old_sigma / new_sigma)
        self.b.copy_((old_sigma * self.b + old_mu - self.mu) / new_sigma)
