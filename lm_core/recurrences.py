"""Recurrent loops with hand-written backward passes (the models' fast path).

Autograd through a Python loop records a dozen tiny ops per time step and
replays them one by one; here each recurrence runs its forward loop without a
graph, saves the activations, and its backward loop does only the per-step
work that cannot be batched (one small matmul and a few element-wise ops),
leaving the weight gradients to one large matmul over all T·B rows.

Inputs are the input projections for all steps (`x W_x + b`, gathered from
the one-hot rows), shape (T, B, k·h); weights act as `h @ W` with W (h, k·h).
The maths is the cells' own; tests compare every gradient with autograd.
"""

from __future__ import annotations

import torch


def fast_tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh(z) as 2·σ(2z) − 1, in place on `z`.

    The same function to within float rounding; on this CPU torch's sigmoid is
    about 5× faster than its tanh, and every recurrence is a chain of them.
    """
    return torch.sigmoid_(z.mul_(2)).mul_(2).sub_(1)


def tanh_of(x: torch.Tensor) -> torch.Tensor:
    """`fast_tanh` that leaves `x` untouched."""
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


def _weight_grads(h0: torch.Tensor, hs: torch.Tensor, dpre: torch.Tensor) -> torch.Tensor:
    """Σ_t H_{t-1}ᵀ dpre_t as one (h, k·h) matmul."""
    prev = torch.cat([h0.unsqueeze(0), hs[:-1]])  # (T, B, h): H_{t-1}
    return prev.reshape(-1, prev.shape[-1]).t() @ dpre.reshape(-1, dpre.shape[-1])


def _elman_backward(dz: torch.Tensor, dhs: torch.Tensor, hs: torch.Tensor, h0: torch.Tensor, W: torch.Tensor):
    """Backward of H_t = φ(XW_t + H_{t-1} W + b) given `dz` = φ'(pre-activation) for every step (overwritten).

    Returns the gradients of (XW, h0, W, b). Nothing saved is modified, so a graph kept for another
    backward (training without detaching the state) can run it again.
    """
    dh = torch.zeros_like(h0)
    Wt = W.t()
    for t in range(hs.shape[0] - 1, -1, -1):
        dz[t].mul_(dh.add_(dhs[t]))
        dh = dz[t] @ Wt
    return dz, dh, _weight_grads(h0, hs, dz), dz.sum((0, 1))


class TanhRNN(torch.autograd.Function):
    """H_t = tanh(XW_t + H_{t-1} W + b)."""

    @staticmethod
    def forward(ctx, xw, h0, W, b):
        hs = torch.empty_like(xw)  # (T, B, h)
        h = h0
        for t in range(xw.shape[0]):
            h = fast_tanh(torch.addmm(xw[t], h, W).add_(b))
            hs[t] = h
        ctx.save_for_backward(hs, h0, W)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        hs, h0, W = ctx.saved_tensors
        return _elman_backward(1 - hs * hs, dhs, hs, h0, W)  # tanh' = 1 − tanh², from the outputs


class ReLURNN(torch.autograd.Function):
    """H_t = max(0, XW_t + H_{t-1} W + b): the chapter's exercise of ReLU in place of tanh.

    ReLU' is 1 where the output is positive and 0 elsewhere (0 at the kink, as torch.relu's
    autograd), so like tanh' it is read from the saved outputs. Unlike tanh' it never shrinks a
    gradient on its way back: only W decides whether it explodes, which is the exercise's question.
    """

    @staticmethod
    def forward(ctx, xw, h0, W, b):
        hs = torch.empty_like(xw)
        h = h0
        for t in range(xw.shape[0]):
            h = torch.addmm(xw[t], h, W).add_(b).relu_()
            hs[t] = h
        ctx.save_for_backward(hs, h0, W)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        hs, h0, W = ctx.saved_tensors
        return _elman_backward((hs > 0).to(hs.dtype), dhs, hs, h0, W)


# The plain RNN's recurrence for each nonlinearity a model may use.
ELMAN = {"tanh": TanhRNN, "relu": ReLURNN}


class LSTM(torch.autograd.Function):
    """Gates in PyTorch's order (i, f, g, o) = σ, σ, tanh, σ of XW_t + H_{t-1} W;
    C_t = f·C_{t-1} + i·g,  H_t = o·tanh(C_t). Returns (H for all steps, C_T)."""

    @staticmethod
    def forward(ctx, xg, h0, c0, W):
        T, B, h4 = xg.shape
        h = h4 // 4
        acts = torch.empty_like(xg)  # activated gates
        cs = torch.empty(T, B, h, dtype=xg.dtype, device=xg.device)
        hs = torch.empty_like(cs)
        hh, c = h0, c0
        for t in range(T):
            a = torch.addmm(xg[t], hh, W)
            torch.sigmoid(a, out=acts[t])
            g = fast_tanh(a[:, 2 * h : 3 * h])
            acts[t, :, 2 * h : 3 * h] = g
            i, f, o = acts[t, :, :h], acts[t, :, h : 2 * h], acts[t, :, 3 * h :]
            c = f * c + i * g
            cs[t] = c
            hh = o * tanh_of(c)
            hs[t] = hh
        ctx.save_for_backward(acts, cs, hs, h0, c0, W)
        return hs, c

    @staticmethod
    def backward(ctx, dhs, dcT):
        acts, cs, hs, h0, c0, W = ctx.saved_tensors
        T, _, h = hs.shape
        tcs = torch.tanh(cs)
        dpre = torch.empty_like(acts)
        dh = torch.zeros_like(h0)
        dc = dcT.clone() if dcT is not None else torch.zeros_like(c0)
        Wt = W.t()
        for t in range(T - 1, -1, -1):
            i, f, g, o = acts[t, :, :h], acts[t, :, h : 2 * h], acts[t, :, 2 * h : 3 * h], acts[t, :, 3 * h :]
            c_prev = cs[t - 1] if t > 0 else c0
            dh = dh + dhs[t]
            tc = tcs[t]
            dc = dc + dh * o * (1 - tc * tc)
            dpre[t, :, :h] = dc * g * i * (1 - i)
            dpre[t, :, h : 2 * h] = dc * c_prev * f * (1 - f)
            dpre[t, :, 2 * h : 3 * h] = dc * i * (1 - g * g)
            dpre[t, :, 3 * h :] = dh * tc * o * (1 - o)
            dc = dc * f
            dh = dpre[t] @ Wt
        return dpre, dh, dc, _weight_grads(h0, hs, dpre)


class GRUTorch(torch.autograd.Function):
    """PyTorch's GRU: r, z = σ(XW + H W_{r,z} + b), n = tanh(XW_n + r·(H W_n + b_n)),
    H_t = (1 − z)·n + z·H_{t-1}. `xg` holds the input part with its bias (r, z, n);
    `b` is the hidden bias b_hh."""

    @staticmethod
    def forward(ctx, xg, h0, W, b):
        T, B, h3 = xg.shape
        h = h3 // 3
        acts = torch.empty_like(xg)  # r, z, n
        ghn = torch.empty(T, B, h, dtype=xg.dtype, device=xg.device)
        hs = torch.empty_like(ghn)
        hh = h0
        for t in range(T):
            gh = torch.addmm(b, hh, W)
            torch.sigmoid(xg[t, :, : 2 * h] + gh[:, : 2 * h], out=acts[t, :, : 2 * h])
            ghn[t] = gh[:, 2 * h :]
            r, z = acts[t, :, :h], acts[t, :, h : 2 * h]
            n = fast_tanh(xg[t, :, 2 * h :] + r * gh[:, 2 * h :])
            acts[t, :, 2 * h :] = n
            hh = n + z * (hh - n)
            hs[t] = hh
        ctx.save_for_backward(acts, ghn, hs, h0, W)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        acts, ghn, hs, h0, W = ctx.saved_tensors
        T, _, h = hs.shape
        dgi = torch.empty_like(acts)
        dgh = torch.empty_like(acts)
        dh = torch.zeros_like(h0)
        Wt = W.t()
        for t in range(T - 1, -1, -1):
            r, z, n = acts[t, :, :h], acts[t, :, h : 2 * h], acts[t, :, 2 * h :]
            h_prev = hs[t - 1] if t > 0 else h0
            dh = dh + dhs[t]
            dan = dh * (1 - z) * (1 - n * n)
            dar = dan * ghn[t] * r * (1 - r)
            daz = dh * (h_prev - n) * z * (1 - z)
            dgi[t, :, :h] = dar
            dgi[t, :, h : 2 * h] = daz
            dgi[t, :, 2 * h :] = dan
            dgh[t, :, : 2 * h] = dgi[t, :, : 2 * h]
            dgh[t, :, 2 * h :] = dan * r
            dh = dh * z + dgh[t] @ Wt
        return dgi, dh, _weight_grads(h0, hs, dgh), dgh.sum((0, 1))


class GRUBook(torch.autograd.Function):
    """The book's GRU: Z, R = σ(XW + H W_{z,r} + b), H̃ = tanh(XW_h + (R·H) W_hh + b_h),
    H_t = Z·H_{t-1} + (1 − Z)·H̃. `xzr` (T, B, 2h) and `xh` (T, B, h) are input parts
    without biases; W_zr is (h, 2h)."""

    @staticmethod
    def forward(ctx, xzr, xh, h0, W_zr, b_zr, W_hh, b_h):
        T, _, h = xh.shape
        zr = torch.empty_like(xzr)
        cand = torch.empty_like(xh)
        rh = torch.empty_like(xh)
        hs = torch.empty_like(xh)
        H = h0
        for t in range(T):
            torch.sigmoid(torch.addmm(xzr[t], H, W_zr).add_(b_zr), out=zr[t])
            Z, R = zr[t, :, :h], zr[t, :, h:]
            torch.mul(R, H, out=rh[t])
            cand[t] = fast_tanh(torch.addmm(xh[t], rh[t], W_hh).add_(b_h))
            H = cand[t] + Z * (H - cand[t])
            hs[t] = H
        ctx.save_for_backward(zr, cand, rh, hs, h0, W_zr, W_hh)
        return hs

    @staticmethod
    def backward(ctx, dhs):
        zr, cand, rh, hs, h0, W_zr, W_hh = ctx.saved_tensors
        T, _, h = hs.shape
        dzr = torch.empty_like(zr)
        dcand = torch.empty_like(cand)
        dH = torch.zeros_like(h0)
        W_zr_t, W_hh_t = W_zr.t(), W_hh.t()
        for t in range(T - 1, -1, -1):
            Z, R, Ht = zr[t, :, :h], zr[t, :, h:], cand[t]
            H_prev = hs[t - 1] if t > 0 else h0
            dH = dH + dhs[t]
            dcand[t] = dH * (1 - Z) * (1 - Ht * Ht)
            drh = dcand[t] @ W_hh_t
            dzr[t, :, :h] = dH * (H_prev - Ht) * Z * (1 - Z)
            dzr[t, :, h:] = drh * H_prev * R * (1 - R)
            dH = dH * Z + drh * R + dzr[t] @ W_zr_t
        prev = torch.cat([h0.unsqueeze(0), hs[:-1]]).reshape(-1, h)
        dW_zr = prev.t() @ dzr.reshape(-1, 2 * h)
        dW_hh = rh.reshape(-1, h).t() @ dcand.reshape(-1, h)
        return dzr, dcand, dH, dW_zr, dzr.sum((0, 1)), dW_hh, dcand.sum((0, 1))
