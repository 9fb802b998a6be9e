"""The vanilla (non-LSTM) Meta RNN and VS Meta RNN of Section 3, and the matrix W̃ of Eq. 4.

Chapter 1 of the book derives everything in this module. Notation follows the paper:

* ``s``: the state. A Meta RNN has ``s`` of shape ``[N]`` (Eq. 1); a VS Meta RNN duplicates it
  along two axes, ``s`` of shape ``[A, B, N]`` (Eq. 2), with ``A = B`` (Eq. 3 needs it: sub-RNN
  ``(a, b)`` listens to the sub-RNNs ``(c, a)``, so the first axis must index the second).
* ``W``: ``[N, N]`` recurrent weights shared by every sub-RNN, ``C``: ``[N, N]`` interaction
  weights, ``b_hat``: ``[N]`` bias. Together they are the meta variables ``V_M = {b̂, W, C}``;
  the state ``s`` holds the learned variables ``V_L``.
* ``W̃`` (``w_tilde``): the sparse, shared ``[A·B·N, A·B·N]`` matrix of Eq. 4 / Eq. 19 with which
  a plain Meta RNN (Eq. 1) computes exactly the VS Meta RNN step (Eq. 3). Its 6-axis view is
  indexed ``[c, d, i, a, b, j]``: source sub-RNN ``(c, d)`` unit ``i`` to target ``(a, b)`` unit ``j``.

Example:
    >>> import torch, vsml_lite as vl
    >>> A, N = 3, 4
    >>> s, W, C, b_hat = torch.randn(A, A, N), torch.randn(N, N), torch.randn(N, N), torch.randn(N)
    >>> lhs = vl.vs_meta_rnn_step(s, W, C, b_hat)                               # Eq. 3, left
    >>> rhs = vl.meta_rnn_step(s.reshape(-1), vl.w_tilde(W, C, A), vl.b_tilde(b_hat, A))  # Eq. 1
    >>> torch.allclose(lhs.reshape(-1), rhs, atol=1e-5)
    True
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch

Activation = Callable[[torch.Tensor], torch.Tensor]

# Codes of the four cases of Eq. 4, used by :func:`w_tilde_cases` and the Chapter 1 heat-map.
CASE_ZERO = 0  #: W̃ entry is 0 ("otherwise")
CASE_C = 1  #: W̃ entry is C_ij: d = a and (d != b or c != a)
CASE_W = 2  #: W̃ entry is W_ij: d != a and d = b and c = a
CASE_CW = 3  #: W̃ entry is C_ij + W_ij: d = a = b and c = a
#: Case code -> label, in code order.
CASE_NAMES = ("0", "C", "W", "C+W")


def _shape(x: torch.Tensor) -> Tuple[int, ...]:
    return tuple(x.shape)


def _check_square(name: str, M: torch.Tensor, N: int) -> None:
    if not isinstance(M, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(M).__name__}")
    if M.shape != (N, N):
        raise ValueError(f"{name} must have shape [N, N] = [{N}, {N}], got {list(M.shape)}")


def _check_bias(b_hat: torch.Tensor, N: int) -> None:
    if not isinstance(b_hat, torch.Tensor):
        raise TypeError(f"b_hat must be a torch.Tensor, got {type(b_hat).__name__}")
    if b_hat.shape != (N,):
        raise ValueError(f"b_hat must have shape [N] = [{N}], got {list(b_hat.shape)}")


def _check_vs_state(s: torch.Tensor) -> Tuple[int, int, int]:
    if not isinstance(s, torch.Tensor):
        raise TypeError(f"s must be a torch.Tensor, got {type(s).__name__}")
    if s.dim() != 3:
        raise ValueError(f"s must have shape [A, B, N], got {list(s.shape)} ({s.dim()} axes)")
    A, B, N = s.shape
    if A != B:
        raise ValueError(
            f"s has shape [A, B, N] = {list(s.shape)} with A != B; the interaction term of "
            "Eq. 3 (sum over c of s[c, a, i]) needs A == B"
        )
    return A, B, N


def _check_vs_args(s, W, C, b_hat) -> Tuple[int, int, int]:
    """Validate the arguments of Eq. 3 and return ``(A, B, N)``."""
    A, B, N = _check_vs_state(s)
    _check_square("W", W, N)
    _check_square("C", C, N)
    _check_bias(b_hat, N)
    return A, B, N


def meta_rnn_step(
    s: torch.Tensor, W: torch.Tensor, b_hat: torch.Tensor, activation: Activation = torch.tanh
) -> torch.Tensor:
    """One tick of a plain Meta RNN, Eq. 1: ``s_j <- σ(b̂_j + Σ_i s_i W_ij)``.

    Args:
        s: state, ``[N]`` or batched ``[..., N]``.
        W: ``[N, N]`` weights.
        b_hat: ``[N]`` bias.
        activation: the non-linearity σ (default ``tanh``).

    Returns:
        The new state, same shape as ``s``.
    """
    if not isinstance(s, torch.Tensor) or s.dim() < 1:
        raise ValueError(f"s must be a tensor of shape [..., N], got {getattr(s, 'shape', s)!r}")
    N = s.shape[-1]
    _check_square("W", W, N)
    _check_bias(b_hat, N)
    return activation(b_hat + s @ W)  # (Eq. 1)


def vs_meta_rnn_step(
    s: torch.Tensor,
    W: torch.Tensor,
    C: torch.Tensor,
    b_hat: torch.Tensor,
    activation: Activation = torch.tanh,
) -> torch.Tensor:
    """One tick of the vanilla VS Meta RNN, Eq. 3 (left-hand side)::

        s_abj <- σ(b̂_j + Σ_i s_abi W_ij + Σ_{c,i} s_cai C_ij)

    The interaction term does not depend on ``b``: it is computed once per ``a`` as
    ``(Σ_c s_c·) @ C`` and broadcast over ``b``, so a tick costs two ``[.., N] @ [N, N]`` products.

    Args:
        s: state ``[A, B, N]`` with ``A == B``.
        W: ``[N, N]`` weights shared by all ``A·B`` sub-RNNs.
        C: ``[N, N]`` interaction weights.
        b_hat: ``[N]`` bias.
        activation: σ (default ``tanh``).

    Returns:
        The new state ``[A, B, N]``.

    Raises:
        ValueError: when a shape is wrong or ``A != B``; the message names the shape.
    """
    A, B, N = _check_vs_args(s, W, C, b_hat)
    own = s @ W  # [A, B, N]: Σ_i s_abi W_ij
    incoming = s.sum(dim=0) @ C  # [A, N]: row a is Σ_{c,i} s_cai C_ij (the sum runs over c)
    return activation(b_hat + own + incoming[:, None, :])  # (Eq. 3), broadcast over b


def vs_meta_rnn_step_reference(
    s: torch.Tensor,
    W: torch.Tensor,
    C: torch.Tensor,
    b_hat: torch.Tensor,
    activation: Activation = torch.tanh,
) -> torch.Tensor:
    """Eq. 3 written as plainly as possible: a loop over every sub-RNN ``(a, b)`` and every
    sender ``c``. Slow; it exists to be read and to test :func:`vs_meta_rnn_step` against."""
    A, B, N = _check_vs_args(s, W, C, b_hat)
    out = torch.empty_like(s)
    for a in range(A):
        for b in range(B):
            pre = b_hat + s[a, b] @ W  # the sub-RNN's own recurrence
            for c in range(A):
                pre = pre + s[c, a] @ C  # interaction: messages from sub-RNN (c, a)
            out[a, b] = activation(pre)
    return out


def vs_meta_rnn_step_eq14(
    s: torch.Tensor,
    W: torch.Tensor,
    C: torch.Tensor,
    U: torch.Tensor,
    b_hat: torch.Tensor,
    activation: Activation = torch.tanh,
) -> torch.Tensor:
    """One tick of the VS Meta RNN with the backward interaction term of Eq. 14::

        s_abj <- σ(b̂_j + Σ_i s_abi W_ij + Σ_{c,i} s_cai C_ij + Σ_{c,i} s_bci U_ij)

    Read as a layer whose sub-RNN ``(a, b)`` sits on the connection from neuron ``a`` to
    neuron ``b``: ``W`` is its own recurrence; ``C`` brings the messages of the sub-RNNs
    ``(c, a)`` that end in its input neuron ``a`` (Eq. 3's interaction, running forward);
    ``U`` brings those of the sub-RNNs ``(b, c)`` that start at its output neuron ``b``
    (running backward, "connections in the opposite direction compared to Figure 1c"). With
    ``U = 0`` it is Eq. 3. Both interaction terms are computed once per neuron and broadcast.
    The paper's typeset labels call the ``W`` term "forward" and both others "backward"; the
    text and Figure 1c give the reading here. Chapter 4 runs this with the sub-LSTM as σ
    (:func:`vsml_lite.network.dense_ticks`: its forward and backward messages are the C and U
    terms).

    Args:
        s: state ``[A, B, N]`` with ``A == B``.
        W, C, U: ``[N, N]`` each, shared by all ``A·B`` sub-RNNs.
        b_hat: ``[N]`` bias.
        activation: σ (default ``tanh``).

    Returns:
        The new state ``[A, B, N]``.
    """
    A, B, N = _check_vs_args(s, W, C, b_hat)
    _check_square("U", U, N)
    own = s @ W  # [A, B, N]: Σ_i s_abi W_ij
    from_below = s.sum(dim=0) @ C  # [A, N]: row a is Σ_{c,i} s_cai C_ij
    from_above = s.sum(dim=1) @ U  # [B, N]: row b is Σ_{c,i} s_bci U_ij
    return activation(b_hat + own + from_below[:, None, :] + from_above[None, :, :])  # (Eq. 14)


def vs_meta_rnn_step_eq14_reference(
    s: torch.Tensor,
    W: torch.Tensor,
    C: torch.Tensor,
    U: torch.Tensor,
    b_hat: torch.Tensor,
    activation: Activation = torch.tanh,
) -> torch.Tensor:
    """Eq. 14 written as plainly as possible: a loop over every sub-RNN ``(a, b)`` and every
    ``c``. Slow; it exists to be read and to test :func:`vs_meta_rnn_step_eq14` against."""
    A, B, N = _check_vs_args(s, W, C, b_hat)
    _check_square("U", U, N)
    out = torch.empty_like(s)
    for a in range(A):
        for b in range(B):
            pre = b_hat + s[a, b] @ W  # the sub-RNN's own recurrence
            for c in range(A):
                pre = pre + s[c, a] @ C  # from sub-RNN (c, a): the layer below, forward
                pre = pre + s[b, c] @ U  # from sub-RNN (b, c): the layer above, backward
            out[a, b] = activation(pre)
    return out


def w_tilde_6d(W: torch.Tensor, C: torch.Tensor, A: int) -> torch.Tensor:
    """W̃ of Eq. 19 in its six-axis form ``[c, d, i, a, b, j]`` (shape ``[A, A, N, A, A, N]``)::

        W̃_cdiabj = (d ≡ a) C_ij + (d ≡ b)(c ≡ a) W_ij

    where ``x ≡ y`` is 1 when ``x = y`` and 0 otherwise (Appendix A). This is the tabular
    Eq. 4 written as a sum; ``w_tilde_cases`` gives the table's case of every entry.
    """
    if not isinstance(A, int) or A < 1:
        raise ValueError(f"A must be a positive int, got {A!r}")
    if not isinstance(W, torch.Tensor) or W.dim() != 2:
        raise ValueError(f"W must have shape [N, N], got {getattr(W, 'shape', W)!r}")
    N = W.shape[0]
    _check_square("W", W, N)
    _check_square("C", C, N)
    eye = torch.eye(A, dtype=W.dtype, device=W.device)
    # Each factor is laid out on the six axes [c, d, i, a, b, j] and broadcast.
    d_eq_a = eye[None, :, None, :, None, None]  # [1, A, 1, A, 1, 1]
    d_eq_b = eye[None, :, None, None, :, None]  # [1, A, 1, 1, A, 1]
    c_eq_a = eye[:, None, None, :, None, None]  # [A, 1, 1, A, 1, 1]
    C6 = C[None, None, :, None, None, :]  # [1, 1, N, 1, 1, N]
    W6 = W[None, None, :, None, None, :]  # [1, 1, N, 1, 1, N]
    w6 = d_eq_a * C6 + d_eq_b * c_eq_a * W6  # (Eq. 19)
    return w6.expand(A, A, N, A, A, N).contiguous()


def w_tilde(W: torch.Tensor, C: torch.Tensor, A: int) -> torch.Tensor:
    """W̃ of Eq. 4 flattened to ``[A·A·N, A·A·N]``: rows are senders ``(c, d, i)`` and columns
    receivers ``(a, b, j)``, both in C order, matching ``s.reshape(-1)`` of an ``[A, A, N]`` state.
    Then :func:`meta_rnn_step` with ``w_tilde`` and :func:`b_tilde` is one step of Eq. 3."""
    w6 = w_tilde_6d(W, C, A)
    n = A * A * W.shape[0]
    return w6.reshape(n, n)


def b_tilde(b_hat: torch.Tensor, A: int) -> torch.Tensor:
    """The bias of the equivalent Meta RNN: ``b_hat`` repeated for each of the ``A·A``
    sub-RNNs, shape ``[A·A·N]`` (flattened like ``s.reshape(-1)``)."""
    if not isinstance(b_hat, torch.Tensor) or b_hat.dim() != 1:
        raise ValueError(f"b_hat must have shape [N], got {getattr(b_hat, 'shape', b_hat)!r}")
    return b_hat.repeat(A * A)


def w_tilde_cases(A: int, N: int, flat: bool = True) -> torch.Tensor:
    """Which case of the tabular Eq. 4 every entry of W̃ falls in.

    Computed from the index conditions of Eq. 4 (not from Eq. 19), so that tests and the
    Chapter 1 heat-map can check one against the other.

    Returns:
        ``int64`` codes (``CASE_ZERO``, ``CASE_C``, ``CASE_W``, ``CASE_CW``), shape
        ``[A·A·N, A·A·N]`` when ``flat`` else ``[A, A, N, A, A, N]``.
    """
    if A < 1 or N < 1:
        raise ValueError(f"A and N must be positive, got A={A}, N={N}")
    r = torch.arange(A)
    c = r[:, None, None, None, None, None]
    d = r[None, :, None, None, None, None]
    a = r[None, None, None, :, None, None]
    b = r[None, None, None, None, :, None]
    case_c = (d == a) & ((d != b) | (c != a))  # (Eq. 4), first row
    case_w = (d != a) & (d == b) & (c == a)  # second row
    case_cw = (d == a) & (d == b) & (c == a)  # third row
    codes = torch.full((A, A, 1, A, A, 1), CASE_ZERO, dtype=torch.int64)
    codes[case_c.expand_as(codes)] = CASE_C
    codes[case_w.expand_as(codes)] = CASE_W
    codes[case_cw.expand_as(codes)] = CASE_CW
    codes = codes.expand(A, A, N, A, A, N)
    n = A * A * N
    return codes.reshape(n, n) if flat else codes.contiguous()


def count_meta_variables(N: int) -> int:
    """|V_M| of the vanilla VS Meta RNN: ``W`` and ``C`` (``N²`` each) and ``b̂`` (``N``).
    Independent of ``A`` and ``B``: that is variable sharing."""
    return 2 * N * N + N


def count_learned_variables(A: int, N: int, B: Optional[int] = None) -> int:
    """|V_L|: the state, ``A·B·N`` numbers (``B`` defaults to ``A``, as in Eq. 3).

    The stacked networks of later chapters have ``A != B`` (784 inputs, 10 outputs), so ``B``
    can be given: ``count_learned_variables(784, 32, B=10)`` = 250,880, the paper's ≈251,000
    for sub-LSTMs whose state is 32 numbers (hidden and cell vectors of 16 each)."""
    B = A if B is None else B
    return A * B * N


def count_equivalent_meta_rnn_variables(A: int, N: int) -> int:
    """|V_M| of a plain Meta RNN (Eq. 1) with as much state as the VS Meta RNN: a dense
    ``W̃`` of ``(A²N)²`` entries plus an ``A²N`` bias. Compare :func:`count_meta_variables`."""
    n = A * A * N
    return n * n + n


def equivalence_sweep(
    trials: int,
    max_A: int,
    max_N: int,
    ticks: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> list:
    """Run Eq. 3 and Eq. 1 with W̃ side by side for random sizes; Chapter 1's numerical proof.

    For each trial draws ``A`` in ``1..max_A`` and ``N`` in ``1..max_N``, random ``s, W, C, b̂``
    (scaled so that ``tanh`` is not saturated), runs ``ticks`` steps of both forms and records
    the largest absolute difference between the two states.

    Returns:
        One dict per trial: ``{"A", "N", "state size", "W̃ entries", "max |Eq.3 - Eq.1|"}``.
    """
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(trials):
        A = int(torch.randint(1, max_A + 1, (), generator=gen))
        N = int(torch.randint(1, max_N + 1, (), generator=gen))
        s = torch.randn(A, A, N, generator=gen, dtype=dtype)  # [A, B, N]
        W = torch.randn(N, N, generator=gen, dtype=dtype) / N**0.5
        C = torch.randn(N, N, generator=gen, dtype=dtype) / (A * N) ** 0.5
        b_hat = torch.randn(N, generator=gen, dtype=dtype)
        Wt, bt = w_tilde(W, C, A), b_tilde(b_hat, A)  # [A²N, A²N], [A²N]
        vs, flat, worst = s, s.reshape(-1), 0.0
        for _ in range(ticks):
            vs = vs_meta_rnn_step(vs, W, C, b_hat)  # (Eq. 3)
            flat = meta_rnn_step(flat, Wt, bt)  # (Eq. 1) with W̃ of Eq. 4
            worst = max(worst, (vs.reshape(-1) - flat).abs().max().item())
        rows.append({"A": A, "N": N, "state size": A * A * N, "W̃ entries": Wt.numel(),
                     "max |Eq.3 - Eq.1|": worst})
    return rows
