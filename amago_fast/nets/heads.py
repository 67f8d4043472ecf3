"""Actor and critic heads, evaluated for G discount factors at once, and PopArt."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ActionDist:
    """A batch of per-gamma action distributions. Actions are stored-format vectors:
    one-hot (Discrete), in [-1, 1] (Box), {0, 1} (MultiBinary); shape (..., G, A)."""

    def __init__(self, kind: str, params: torch.Tensor, log_std_range=(-5.0, 2.0)):
        self.kind = kind
        if kind == "tanh_gaussian":
            mean, log_std = params.chunk(2, dim=-1)
            log_std = log_std_range[0] + 0.5 * (log_std_range[1] - log_std_range[0]) * (torch.tanh(log_std) + 1)
            self.mean, self.std = mean, log_std.exp()
        else:
            self.logits = params  # (..., G, A)

    @property
    def probs(self) -> torch.Tensor:
        if self.kind == "discrete":
            return self.logits.softmax(-1)
        if self.kind == "multibinary":
            return torch.sigmoid(self.logits)
        raise TypeError("probs is defined for discrete and multibinary actions only")

    def log_prob(self, a: torch.Tensor) -> torch.Tensor:
        """a: (..., G or 1, A) -> (..., G)."""
        if self.kind == "discrete":
            return (self.logits.log_softmax(-1) * a).sum(-1)
        if self.kind == "multibinary":
            return -F.binary_cross_entropy_with_logits(self.logits, a.expand_as(self.logits), reduction="none").sum(-1)
        a = a.clamp(-0.999, 0.999)
        u = torch.atanh(a)
        lp = torch.distributions.Normal(self.mean, self.std).log_prob(u) - torch.log1p(-a.pow(2) + 1e-6)
        return lp.sum(-1)

    def sample(self, reparam: bool = False) -> torch.Tensor:
        """(..., G, A). reparam: differentiable sample (tanh-Gaussian rsample; straight-
        through for MultiBinary). Discrete DPG uses probs instead of samples."""
        if self.kind == "discrete":
            idx = torch.distributions.Categorical(logits=self.logits).sample()
            return F.one_hot(idx, self.logits.shape[-1]).to(self.logits.dtype)
        if self.kind == "multibinary":
            p = self.probs
            a = torch.bernoulli(p.detach())
            return a + p - p.detach() if reparam else a
        u = self.mean + self.std * torch.randn_like(self.mean)
        return torch.tanh(u if reparam else u.detach())

    def mode(self) -> torch.Tensor:
        if self.kind == "discrete":
            return F.one_hot(self.logits.argmax(-1), self.logits.shape[-1]).to(self.logits.dtype)
        if self.kind == "multibinary":
            return (self.logits > 0).to(self.logits.dtype)
        return torch.tanh(self.mean)


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


class EnsembleLinear(nn.Module):
    """C independent linear layers applied in one batched matmul. x: (C, N, in) -> (C, N, out)."""

    def __init__(self, C: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(C, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(C, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """C critics, each giving Q for all G gammas (PopArt-normalised values).

    discrete: forward(s (..., D)) -> (..., C, G, A) (Q of every action);
    otherwise: forward(s (..., D), a (..., Ga, A)) -> (..., C, G), Ga in {1, G}: with
    Ga = G, gamma g's Q is evaluated at gamma g's action (the diagonal).
    """

    def __init__(self, d_in: int, d_hidden: int, n_layers: int, action_dim: int, n_gammas: int, n_critics: int, discrete: bool):
        super().__init__()
        self.discrete, self.G, self.A, self.C = discrete, n_gammas, action_dim, n_critics
        self.out_per_gamma = action_dim if discrete else 1
        dims = [d_in + (0 if discrete else action_dim)] + [d_hidden] * n_layers
        self.hidden = nn.ModuleList(EnsembleLinear(n_critics, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(n_critics, dims[-1], n_gammas * self.out_per_gamma)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, C, out)
        h = x.unsqueeze(0).expand(self.C, *x.shape)  # (C, N, in)
        for layer in self.hidden:
            h = F.leaky_relu(layer(h))
        return self.out(h).transpose(0, 1)

    def forward(self, s: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        lead = s.shape[:-1]
        if self.discrete:
            q = self._mlp(s.reshape(-1, s.shape[-1]))  # (N, C, G*A)
            return q.view(*lead, self.C, self.G, self.A)
        Ga = a.shape[-2]
        x = torch.cat([s.unsqueeze(-2).expand(*lead, Ga, s.shape[-1]), a], dim=-1)  # (..., Ga, D+A)
        q = self._mlp(x.reshape(-1, x.shape[-1])).view(*lead, Ga, self.C, self.G)
        if Ga == 1:
            return q[..., 0, :, :]
        return torch.diagonal(q, dim1=-3, dim2=-1)  # (..., C, G): the diagonal goes last


class PopArt(nn.Module):
    """Per-gamma running target statistics (van Hasselt et al. 2016, used by AMAGO).

    Critics predict normalised values; `denormalize(q) = sigma * q + mu`. `update`
    moves the statistics towards a new batch of targets and rescales the critic's
    output layer so its unnormalised predictions are unchanged (Preserve Outputs).
    Disabled: mu = 0, sigma = 1 forever.
    """

    def __init__(self, n_gammas: int, beta: float, enabled: bool, min_sigma: float = 1e-4, max_sigma: float = 1e6):
        super().__init__()
        self.beta, self.enabled, self.min_sigma, self.max_sigma = beta, enabled, min_sigma, max_sigma
        self.register_buffer("mu", torch.zeros(n_gammas))
        self.register_buffer("nu", torch.ones(n_gammas))

    @property
    def sigma(self) -> torch.Tensor:
        return (self.nu - self.mu.pow(2)).clamp(self.min_sigma**2, self.max_sigma**2).sqrt()

    def normalize(self, y: torch.Tensor) -> torch.Tensor:  # (..., G)
        return (y - self.mu) / self.sigma

    def denormalize(self, q: torch.Tensor) -> torch.Tensor:  # (..., G)
        return q * self.sigma + self.mu

    @torch.no_grad()
    def update(self, targets: torch.Tensor, out_layer: EnsembleLinear, out_per_gamma: int) -> None:
        """targets: (N, G) unnormalised TD targets on valid steps; out_layer: the critics'
        final EnsembleLinear whose outputs are laid out (G, out_per_gamma)."""
        if not self.enabled or targets.numel() == 0:
            return
        old_mu, old_sigma = self.mu.clone(), self.sigma
        self.mu.lerp_(targets.mean(0), self.beta)
        self.nu.lerp_(targets.pow(2).mean(0), self.beta)
        new_sigma = self.sigma
        C, h, _ = out_layer.weight.shape
        G = self.mu.shape[0]
        w = out_layer.weight.view(C, h, G, out_per_gamma)
        b = out_layer.bias.view(C, 1, G, out_per_gamma)
        scale = (old_sigma / new_sigma)[:, None]  # (G, 1)
        w.mul_(scale)
        b.copy_((old_sigma[:, None] * b + (old_mu - self.mu)[:, None]) / new_sigma[:, None])
