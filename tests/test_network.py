"""The VSML network of tiny LSTMs: fast == reference, fused == eager, gradients, Appendix D."""

import os

import pytest
import torch

import vsml_lite as vl
from vsml_lite import fused, network

ATOL = 1e-5  # float32 tolerance between implementations that sum in different orders


def _net(sizes, seed=0, **kw):
    return vl.VSMLNetwork(sizes, generator=torch.Generator().manual_seed(seed), **kw)


def _run(net, steps=4, batch=2, seed=1, fast=True, state_clip=None):
    """Run ``steps`` steps with the cross-entropy error fed back; return states and outputs."""
    net.fast = fast
    gen = torch.Generator().manual_seed(seed)
    state = net.initial_state(batch, generator=torch.Generator().manual_seed(seed + 1))
    error = torch.zeros(batch, net.layer_sizes[-1])
    ys = []
    for _ in range(steps):
        x = torch.randn(batch, net.layer_sizes[0], generator=gen) * 2
        labels = torch.randint(net.layer_sizes[-1], (batch,), generator=gen)
        state, y = net.step(state, x, error, state_clip=state_clip)
        error = vl.cross_entropy_error(y, labels)
        ys.append(y)
    return state, torch.stack(ys)


CASES = [
    dict(sizes=[5, 3]),
    dict(sizes=[6, 4, 3]),
    dict(sizes=[4, 7, 5, 2], micro_ticks=3),
    dict(sizes=[5, 3], reduce="sum"),
    dict(sizes=[5, 3], position_inputs=True),
    dict(sizes=[5, 4, 3], hidden_size=8, msg_size=4, micro_ticks=1),
    dict(sizes=[6, 4, 3], layer_norm=True),
    dict(sizes=[5, 3], reduce="sum", layer_norm=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: str(c))
def test_fast_equals_reference(case):
    case = dict(case)
    sizes = case.pop("sizes")
    with torch.no_grad():  # exercises the fused kernel where it applies
        s_fast, y_fast = _run(_net(sizes, **case), fast=True)
        s_ref, y_ref = _run(_net(sizes, **case), fast=False)
    # LayerNorm divides each message by its std over M numbers, magnifying float32 rounding
    atol = 10 * ATOL if case.get("layer_norm") else ATOL
    torch.testing.assert_close(y_fast, y_ref, atol=atol, rtol=1e-4)
    for a, b in zip(s_fast, s_ref):
        for name in ("h", "c", "fwd_in", "bwd_in"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=atol, rtol=1e-4)
    assert y_fast.abs().max() > 1e-3  # the outputs are not trivially zero


def test_layer_norm_normalises_every_sub_lstm_message_before_the_reduction():
    """With layer_norm, each sub-LSTM's message has mean `offset` and std `scale` over its M
    numbers (the official SubRNN), and the layer sends their mean; the norm's V_M learns."""
    net = _net([1, 3], layer_norm=True)
    lstm = net.lstm
    assert lstm.num_meta_variables() == _net([1, 3]).num_meta_variables() + 4 * lstm.msg_size
    with torch.no_grad():
        lstm.fwd_norm_scale.fill_(2.0), lstm.fwd_norm_offset.fill_(0.5)
    layer = net.initial_state(2, generator=torch.Generator().manual_seed(3))[0]
    layer.fwd_in = torch.randn(2, 1, lstm.msg_size, generator=torch.Generator().manual_seed(4))
    h, _, fwd_out, _ = vl.layer.dense_ticks(lstm, layer, micro_ticks=2)  # one input: no averaging
    torch.testing.assert_close(fwd_out.mean(-1), torch.full((2, 3), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(fwd_out.var(-1, unbiased=False), torch.full((2, 3), 4.0), atol=1e-3, rtol=1e-3)
    fwd_out.sum().backward()
    assert lstm.fwd_norm_scale.grad is not None and lstm.fwd_norm_scale.grad.abs().sum() > 0


def test_fused_kernel_equals_eager_fast_path():
    if fused.disabled():
        pytest.skip("fused kernel disabled by VSML_FUSED=0")
    assert fused.available(), "the fused CPU kernel failed to compile (see the warning)"
    gen = torch.Generator().manual_seed(0)
    for H in fused.SUPPORTED_HIDDEN:
        n, A, B = 2, 5, 3
        from_a = torch.randn(n, A, 4 * H, generator=gen)
        from_b = torch.randn(n, B, 4 * H, generator=gen)
        w_hid = torch.randn(H, 4 * H, generator=gen) / H**0.5
        h = torch.randn(n, A, B, H, generator=gen).tanh()
        c = torch.randn(n, A, B, H, generator=gen) * 3
        for clip in (None, 1.5):
            h_k, c_k = fused.dense_ticks(from_a, from_b, w_hid, h, c, 3, clip)
            h_e, c_e = network.folded_ticks(from_a, from_b, w_hid, h, c, 3, clip)  # eager
            torch.testing.assert_close(h_k, h_e, atol=ATOL, rtol=1e-4)
            torch.testing.assert_close(c_k, c_e, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("clip", [None, 0.3])
@pytest.mark.parametrize("A, B, ticks, uses_c", [(4, 3, 3, True), (1, 1, 1, False), (1, 5, 2, True), (3, 1, 1, False)])
def test_fused_kernel_gradients_equal_eager_autograd(clip, A, B, ticks, uses_c):
    """The kernel's own backward gives what autograd gives through the eager ticks, also on
    1 × 1 grids and single ticks (where it skips sums) and when the cell state is unused (no
    gradient arrives for it)."""
    if fused.disabled():
        pytest.skip("fused kernel disabled by VSML_FUSED=0")
    gen = torch.Generator().manual_seed(3)
    for H in (8, 16):
        net = _net([A, B], hidden_size=H)
        layer = net.initial_state(2, generator=gen)[0]
        layer.fwd_in = torch.randn(2, A, net.lstm.msg_size, generator=gen)
        layer.bwd_in = torch.randn(2, B, net.lstm.msg_size, generator=gen)
        layer.h = torch.randn(2, A, B, H, generator=gen).tanh().requires_grad_()
        layer.c = (torch.randn(2, A, B, H, generator=gen) * 0.5).requires_grad_()
        weights = [torch.randn(2, A, B, H, generator=gen) for _ in range(4)]
        grads = []
        for use_fused in (True, False):
            h, c, f_out, b_out = network.dense_ticks(net.lstm, layer, ticks, state_clip=clip, fused=use_fused)
            loss = (h * weights[0]).sum() + f_out.pow(2).sum() + b_out.sum()
            if uses_c:
                loss = loss + (c * weights[1]).sum()
            inputs = [layer.h, layer.c] + list(net.lstm.parameters())
            grads.append(torch.autograd.grad(loss, inputs, allow_unused=True))
        for g_fused, g_eager in zip(*grads):
            if g_eager is None:
                assert g_fused is None
                continue
            torch.testing.assert_close(g_fused, g_eager, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("N, H, ticks, clip", [(1100, 32, 2, None), (700, 16, 1, 0.3), (37, 8, 3, 0.5)])
def test_fused_cell_kernel_equals_eager_values_and_gradients(N, H, ticks, clip, threads):
    """One sub-LSTM per example (the cloning shapes): the kernel that makes the input
    projection itself and sums the weight gradients block by block (256 sub-LSTMs at H = 32
    and two ticks, so 1,100 make uneven blocks, and two threads split them) gives the eager
    ticks' values and gradients, the messages' gradients included."""
    if fused.disabled():
        pytest.skip("fused kernel disabled by VSML_FUSED=0")
    gen = torch.Generator().manual_seed(N + H)
    M = 8
    fwd = torch.randn(N, M, generator=gen).requires_grad_()
    bwd = (torch.randn(N, M, generator=gen) * (torch.rand(N, M, generator=gen) < 0.3)).requires_grad_()
    w_fwd, w_bwd = (torch.randn(M, 4 * H, generator=gen).div(M ** 0.5).requires_grad_() for _ in range(2))
    bias = torch.randn(4 * H, generator=gen).requires_grad_()
    w_hid = torch.randn(H, 4 * H, generator=gen).div(H ** 0.5).requires_grad_()
    h = torch.randn(N, H, generator=gen).tanh().requires_grad_()
    c = (torch.randn(N, H, generator=gen) * 2).requires_grad_()
    weights = [torch.randn(N, H, generator=gen) for _ in range(2)]
    inputs = [fwd, bwd, w_fwd, w_bwd, bias, w_hid, h, c]
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        h_k, c_k = fused.cell_ticks(fwd, bwd, w_fwd, w_bwd, bias, w_hid, h, c, ticks, clip)
        g_k = torch.autograd.grad((h_k * weights[0]).sum() + (c_k * weights[1]).sum(), inputs)
    finally:
        torch.set_num_threads(old)
    from_a, from_b = (fwd @ w_fwd)[:, None], torch.addmm(bias, bwd, w_bwd)[:, None]
    h_e, c_e = network.folded_ticks(from_a, from_b, w_hid, h[:, None, None], c[:, None, None], ticks, clip)
    h_e, c_e = h_e.view(N, H), c_e.view(N, H)
    g_e = torch.autograd.grad((h_e * weights[0]).sum() + (c_e * weights[1]).sum(), inputs)
    torch.testing.assert_close(h_k, h_e, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(c_k, c_e, atol=ATOL, rtol=1e-4)
    for name, a, b in zip(("fwd", "bwd", "w_fwd", "w_bwd", "bias", "w_hid", "h", "c"), g_k, g_e):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("ticks, uses_c", [(2, True), (1, False)])
def test_fused_grid_backward_sums_rows_columns_and_blocks_like_autograd(ticks, uses_c, threads):
    """The grid backward adds every sub-LSTM's gate gradients into its row's and its column's
    projection gradients in the kernel, and into the recurrent weights' gradient block by
    block (512 or 1,024 sub-LSTMs here): on a grid of 3 episodes of 30 x 20 the blocks
    straddle the episodes, and two threads split the episodes; autograd through the eager
    ticks agrees."""
    if fused.disabled():
        pytest.skip("fused kernel disabled by VSML_FUSED=0")
    gen = torch.Generator().manual_seed(11)
    n, A, B, H = 3, 30, 20, 16
    from_a = torch.randn(n, A, 4 * H, generator=gen).requires_grad_()
    from_b = torch.randn(n, B, 4 * H, generator=gen).requires_grad_()
    w_hid = torch.randn(H, 4 * H, generator=gen).div(H ** 0.5).requires_grad_()
    h = torch.randn(n, A, B, H, generator=gen).tanh().requires_grad_()
    c = (torch.randn(n, A, B, H, generator=gen) * 2).requires_grad_()
    weights = [torch.randn(n, A, B, H, generator=gen) for _ in range(2)]
    inputs = [from_a, from_b, w_hid, h, c]

    def grads(ticks_fn):
        h_new, c_new = ticks_fn(from_a, from_b, w_hid, h, c, ticks, 0.5)
        loss = (h_new * weights[0]).sum() + ((c_new * weights[1]).sum() if uses_c else 0)
        return torch.autograd.grad(loss, inputs)

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g_k = grads(fused.dense_ticks)
    finally:
        torch.set_num_threads(old)
    g_e = grads(network.folded_ticks)
    for name, a, b in zip(("from_a", "from_b", "w_hid", "h", "c"), g_k, g_e):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)


def test_fused_cell_kernel_names_a_wrong_shape():
    if fused.disabled():
        pytest.skip("fused kernel disabled by VSML_FUSED=0")
    H, M, N = 8, 4, 3
    args = [torch.zeros(N, M), torch.zeros(N, M), torch.zeros(M, 4 * H), torch.zeros(M, 4 * H),
            torch.zeros(4 * H), torch.zeros(H, 4 * H), torch.zeros(N, H), torch.zeros(N, H)]
    args[3] = torch.zeros(M + 1, 4 * H)
    with pytest.raises(ValueError, match=r"w_bwd must have shape \[4, 32\]"):
        fused.cell_ticks(*args, 1)


def test_meta_gradients_match_and_flow_to_every_meta_variable():
    grads = []
    for fast in (True, False):
        net = _net([5, 4, 3])
        _, ys = _run(net, steps=3, fast=fast)
        loss = ys.pow(2).sum()
        net.zero_grad()
        loss.backward()
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    for k in grads[0]:
        assert torch.isfinite(grads[0][k]).all() and grads[0][k].abs().sum() > 0, k
        torch.testing.assert_close(grads[0][k], grads[1][k], atol=1e-5, rtol=1e-3)


def test_datum_feeds_its_own_row_only():
    """Section 3.1: x_ī enters every sub-LSTM of row ī, and no other."""
    net = _net([6, 3])
    state = net.initial_state(1, generator=torch.Generator().manual_seed(0))
    x = torch.randn(1, 6)
    x2 = x.clone()
    x2[0, 2] += 1.0
    with torch.no_grad():
        s1, _ = net.step(state, x, torch.zeros(1, 3))
        s2, _ = net.step(state, x2, torch.zeros(1, 3))
    changed = (s1[0].h - s2[0].h).abs().amax(dim=(0, 2, 3)) > 0  # per row a
    assert changed.tolist() == [False, False, True, False, False, False]


def test_output_is_slot_of_mean_forward_message():
    net = _net([4, 3], output_bound=None)
    state = net.initial_state(1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        new, y = net.step(state, torch.randn(1, 4), torch.zeros(1, 3))
        h = new[0].h  # [1, A, B, H]
        per_sub = h @ net.lstm.fwd_proj + net.lstm.fwd_bias  # every sub-LSTM's message
        expected = per_sub.mean(dim=1)[..., network.OUTPUT_SLOT]  # mean over a
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=1e-5)


def test_error_enters_last_layer_backward_message():
    net = _net([4, 5, 3])
    state = net.initial_state(1, generator=torch.Generator().manual_seed(0))
    err = torch.tensor([[0.5, -0.25, 0.1]])
    new, _ = net.step(state, torch.randn(1, 4), err)
    assert torch.equal(new[-1].bwd_in[..., network.ERROR_SLOT], err)
    assert torch.count_nonzero(new[-1].bwd_in[..., network.ERROR_SLOT + 1:]) == 0
    assert new[0].bwd_in.shape == (1, 5, net.lstm.msg_size)  # from layer 2, for the next step


def test_deterministic_under_seed():
    a = _run(_net([5, 3], seed=3), seed=4)[1]
    b = _run(_net([5, 3], seed=3), seed=4)[1]
    assert torch.equal(a, b)
    c = _run(_net([5, 3], seed=5), seed=4)[1]
    assert not torch.equal(a, c)


def test_state_clip_and_learner_batch_average():
    net = _net([5, 3])
    state, _ = _run(net, steps=3, batch=4, state_clip=0.05)
    assert all(s.c.abs().max() <= 0.05 + 1e-7 for s in state)
    avg = vl.average_learner_batch(state)
    for s, a in zip(state, avg):
        assert torch.equal(a.h[0], a.h[3]) and torch.equal(a.c[1], a.c[2])
        torch.testing.assert_close(a.c[0], s.c.mean(dim=0))


def test_initial_state_matches_description():
    net = _net([100, 3], hidden_size=16, init_rand_fraction=0.5)
    (s,) = net.initial_state(2, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(s.h) == 0
    assert torch.count_nonzero(s.c[..., 8:]) == 0
    assert abs(s.c[..., :8].std().item() - 0.1 * 0.88) < 0.01  # truncated normal, std 1/sqrt(100)


def test_counts_match_the_paper_setting():
    net = _net([784, 10])
    assert net.num_learned_variables() == 250_880  # paper: ≈251,000
    # LSTM (2M + H inputs -> 4H gates, + bias) and two message projections (H -> M, + bias)
    H, M = 16, 8
    assert net.num_meta_variables() == (2 * M + H) * 4 * H + 4 * H + 2 * (H * M + M) == 2384


def test_cross_entropy_error_is_the_gradient():
    y = torch.randn(3, 10, requires_grad=True)
    labels = torch.tensor([1, 5, 9])
    torch.nn.functional.cross_entropy(y, labels, reduction="sum").backward()
    torch.testing.assert_close(vl.cross_entropy_error(y.detach(), labels), y.grad)


def test_bad_inputs_are_clear_errors():
    net = _net([5, 3])
    state = net.initial_state(1)
    with pytest.raises(ValueError, match=r"x must have shape \[n, 5\], got \[1, 4\]"):
        net.step(state, torch.zeros(1, 4), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"error must have shape \[1, 3\], got \[1, 2\]"):
        net.step(state, torch.zeros(1, 5), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="layer_sizes needs at least two"):
        vl.VSMLNetwork([5])
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        vl.VSMLNetwork([5, 3], reduce="max")


def test_build_network_uses_config():
    cfg = vl.get_config("smoke").override({"network.hidden_size": 8, "network.micro_ticks": 3})
    net = vl.build_network(cfg, [6, 2])
    assert net.lstm.hidden_size == 8 and net.micro_ticks == 3


@pytest.mark.gpu
def test_network_on_gpu_matches_cpu():
    cpu = _net([20, 5])
    gpu = _net([20, 5]).cuda()
    x, err = torch.randn(2, 20), torch.zeros(2, 5)
    s = cpu.initial_state(2, generator=torch.Generator().manual_seed(0))
    sg = gpu.initial_state(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, y = cpu.step(s, x, err)
        _, yg = gpu.step(sg, x.cuda(), err.cuda())
    torch.testing.assert_close(yg.cpu(), y, atol=1e-5, rtol=1e-4)


def test_fused_build_folder_is_per_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    path = fused._build_directory()
    assert os.path.dirname(path) == str(tmp_path) and os.path.isdir(path)
    assert fused._build_directory() == path  # stable for one environment
