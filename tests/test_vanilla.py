"""Eqs. 1-4: the VS Meta RNN step equals a Meta RNN step with the sparse shared W̃."""

import random

import pytest
import torch

import vsml_lite as vl

TOL = 1e-12  # float64 agreement demanded by the foundation issue


def _random_params(A, N, gen, dtype=torch.float64):
    s = torch.randn(A, A, N, generator=gen, dtype=dtype)
    W = torch.randn(N, N, generator=gen, dtype=dtype) / N**0.5
    C = torch.randn(N, N, generator=gen, dtype=dtype) / (A * N) ** 0.5
    b_hat = torch.randn(N, generator=gen, dtype=dtype)
    return s, W, C, b_hat


def _random_sizes(count, seed=0):
    rng = random.Random(seed)
    return [(rng.randint(1, 6), rng.randint(1, 8)) for _ in range(count)]


@pytest.mark.parametrize("A,N", _random_sizes(25) + [(1, 1), (6, 8), (2, 1), (1, 8)])
def test_eq3_equals_eq1_with_w_tilde_over_ticks(A, N):
    gen = torch.Generator().manual_seed(1000 * A + N)
    s, W, C, b_hat = _random_params(A, N, gen)
    Wt, bt = vl.w_tilde(W, C, A), vl.b_tilde(b_hat, A)
    assert Wt.shape == (A * A * N, A * A * N)
    vs, flat = s, s.reshape(-1)
    for _ in range(5):
        vs = vl.vs_meta_rnn_step(vs, W, C, b_hat)
        flat = vl.meta_rnn_step(flat, Wt, bt)
        assert (vs.reshape(-1) - flat).abs().max().item() < TOL
    # the state must actually move, or the comparison proves nothing
    assert (vs - s).abs().max().item() > 1e-3


@pytest.mark.parametrize("A,N", [(1, 3), (2, 2), (3, 4), (4, 1)])
def test_fast_step_equals_reference_loop(A, N):
    gen = torch.Generator().manual_seed(7)
    s, W, C, b_hat = _random_params(A, N, gen)
    fast = vl.vs_meta_rnn_step(s, W, C, b_hat)
    ref = vl.vs_meta_rnn_step_reference(s, W, C, b_hat)
    torch.testing.assert_close(fast, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("A,N", [(1, 2), (2, 3), (3, 2), (4, 3)])
def test_every_w_tilde_entry_is_in_its_eq4_case(A, N):
    gen = torch.Generator().manual_seed(3)
    _, W, C, _ = _random_params(A, N, gen)
    w6 = vl.w_tilde_6d(W, C, A)
    cases = vl.w_tilde_cases(A, N, flat=False)
    seen = set()
    for c in range(A):
        for d in range(A):
            for i in range(N):
                for a in range(A):
                    for b in range(A):
                        for j in range(N):
                            # Eq. 4 read straight off the paper, independent of the package.
                            if d == a and (d != b or c != a):
                                want, case = C[i, j], vl.CASE_C
                            elif d != a and d == b and c == a:
                                want, case = W[i, j], vl.CASE_W
                            elif d == a and d == b and c == a:
                                want, case = C[i, j] + W[i, j], vl.CASE_CW
                            else:
                                want, case = torch.zeros((), dtype=W.dtype), vl.CASE_ZERO
                            assert w6[c, d, i, a, b, j].item() == want.item()
                            assert cases[c, d, i, a, b, j].item() == case
                            seen.add(case)
    expected = {vl.CASE_CW} if A == 1 else {vl.CASE_ZERO, vl.CASE_C, vl.CASE_W, vl.CASE_CW}
    assert seen == expected


def test_flat_w_tilde_is_the_6d_view():
    gen = torch.Generator().manual_seed(4)
    _, W, C, _ = _random_params(3, 2, gen)
    w6, flat = vl.w_tilde_6d(W, C, 3), vl.w_tilde(W, C, 3)
    # row (c, d, i) = ((c * A) + d) * N + i, column likewise for (a, b, j)
    assert flat[((2 * 3) + 1) * 2 + 0, ((1 * 3) + 2) * 2 + 1] == w6[2, 1, 0, 1, 2, 1]
    torch.testing.assert_close(flat.reshape(3, 3, 2, 3, 3, 2), w6)


def test_a_equals_b_equals_one_recovers_eq1_with_w_plus_c():
    gen = torch.Generator().manual_seed(5)
    s, W, C, b_hat = _random_params(1, 6, gen)
    torch.testing.assert_close(vl.w_tilde(W, C, 1), W + C, rtol=0, atol=0)
    torch.testing.assert_close(vl.b_tilde(b_hat, 1), b_hat)
    vs = vl.vs_meta_rnn_step(s, W, C, b_hat)
    plain = vl.meta_rnn_step(s[0, 0], W + C, b_hat)
    torch.testing.assert_close(vs[0, 0], plain, rtol=0, atol=TOL)


def test_w_tilde_sparsity_counts():
    A, N = 4, 3
    cases = vl.w_tilde_cases(A, N)
    counts = torch.bincount(cases.reshape(-1), minlength=4)
    # Eq. 19: the term (d ≡ a) C_ij is free in c, a, b: A³ blocks of N² entries; the term
    # (d ≡ b)(c ≡ a) W_ij is free in a, b: A² blocks. They overlap where c = d = a = b: A blocks.
    assert counts[vl.CASE_C] + counts[vl.CASE_CW] == A**3 * N * N
    assert counts[vl.CASE_W] + counts[vl.CASE_CW] == A**2 * N * N
    assert counts[vl.CASE_CW] == A * N * N
    assert counts.sum() == (A * A * N) ** 2


@pytest.mark.parametrize(
    "shape,match",
    [((2, 3, 4), r"\[2, 3, 4\] with A != B"), ((3, 4), r"\[A, B, N\], got \[3, 4\]"),
     ((2, 2, 2, 2), r"got \[2, 2, 2, 2\]")],
)
def test_bad_state_shapes_name_the_shape(shape, match):
    N = shape[-1]
    with pytest.raises(ValueError, match=match):
        vl.vs_meta_rnn_step(torch.zeros(shape), torch.zeros(N, N), torch.zeros(N, N), torch.zeros(N))


def test_bad_parameter_shapes_name_the_shape():
    s = torch.zeros(2, 2, 3)
    with pytest.raises(ValueError, match=r"W must have shape \[N, N\] = \[3, 3\], got \[3, 2\]"):
        vl.vs_meta_rnn_step(s, torch.zeros(3, 2), torch.zeros(3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"C must have shape .* got \[4, 4\]"):
        vl.vs_meta_rnn_step(s, torch.zeros(3, 3), torch.zeros(4, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"b_hat must have shape \[N\] = \[3\], got \[1, 3\]"):
        vl.vs_meta_rnn_step(s, torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"W must have shape \[N, N\] = \[5, 5\], got \[4, 4\]"):
        vl.meta_rnn_step(torch.zeros(5), torch.zeros(4, 4), torch.zeros(5))
    with pytest.raises(TypeError, match="s must be a torch.Tensor"):
        vl.vs_meta_rnn_step([[[0.0]]], torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1))


def test_variable_counts():
    assert vl.count_meta_variables(4) == 2 * 16 + 4
    assert vl.count_learned_variables(3, 4) == 36
    assert vl.count_learned_variables(784, 32, B=10) == 250_880  # the paper's ≈251,000
    assert vl.count_equivalent_meta_rnn_variables(2, 3) == 12 * 12 + 12
    # the counts agree with the objects they count
    A, N = 3, 4
    W = torch.zeros(N, N)
    assert vl.w_tilde(W, W, A).numel() + vl.b_tilde(torch.zeros(N), A).numel() == \
        vl.count_equivalent_meta_rnn_variables(A, N)


def test_equivalence_sweep_reports_tiny_differences_and_is_seeded():
    rows = vl.equivalence_sweep(trials=5, max_A=4, max_N=4, ticks=3, seed=1)
    assert len(rows) == 5
    assert all(r["max |Eq.3 - Eq.1|"] < TOL for r in rows)
    assert all(r["state size"] == r["A"] ** 2 * r["N"] for r in rows)
    assert rows == vl.equivalence_sweep(trials=5, max_A=4, max_N=4, ticks=3, seed=1)


def test_equivalence_sweep_detects_a_wrong_w_tilde(monkeypatch):
    """The sweep must be able to fail: swap C and W inside W̃ and it reports the difference."""
    from vsml_lite import vanilla

    real = vanilla.w_tilde
    monkeypatch.setattr(vanilla, "w_tilde", lambda W, C, A: real(C, W, A))
    rows = vl.equivalence_sweep(trials=3, max_A=3, max_N=3, ticks=2, seed=0)
    assert max(r["max |Eq.3 - Eq.1|"] for r in rows) > 1e-3


@pytest.mark.parametrize("A,N", [(1, 1), (3, 2), (4, 5)])
def test_eq14_fast_equals_the_loop_and_reduces_to_eq3(A, N):
    gen = torch.Generator().manual_seed(A * 10 + N)
    s, W, C, U = (torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in
                  ((A, A, N), (N, N), (N, N), (N, N)))
    b_hat = torch.randn(N, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(vl.vs_meta_rnn_step_eq14(s, W, C, U, b_hat),
                               vl.vs_meta_rnn_step_eq14_reference(s, W, C, U, b_hat))
    torch.testing.assert_close(vl.vs_meta_rnn_step_eq14(s, W, C, torch.zeros_like(U), b_hat),
                               vl.vs_meta_rnn_step(s, W, C, b_hat))
    with pytest.raises(ValueError, match="U"):
        vl.vs_meta_rnn_step_eq14(s, W, C, torch.zeros(N + 1, N + 1, dtype=torch.float64), b_hat)


def test_eq14_backward_term_reaches_a_sub_rnn_from_its_output_neuron_only():
    """Sub-RNN (a, b) hears, through U, exactly the sub-RNNs (b, c) that start at neuron b."""
    A, N = 3, 2
    s = torch.zeros(A, A, N, dtype=torch.float64)
    s[2, 0] = 1.0  # only sub-RNN (2, 0) is active: it starts at neuron 2
    zero = torch.zeros(N, N, dtype=torch.float64)
    out = vl.vs_meta_rnn_step_eq14(s, zero, zero, torch.eye(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64),
                                   activation=lambda x: x)
    heard = out.abs().sum(-1) > 0  # [A, B]
    expected = torch.zeros(A, A, dtype=torch.bool)
    expected[:, 2] = True  # every (a, 2): its output neuron b = 2 is where (2, 0) starts
    assert torch.equal(heard, expected)
