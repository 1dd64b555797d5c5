"""SGD (plain, momentum, dampening, Nesterov, weight decay), Adam (with L2) and AdamW against the
textbook update equations, worked by hand for two steps on a 2-element float64 parameter.

The fixed problem: p0 = [1, -2]. For SGD the loss is 0.5 * |p|^2, so grad = p. For Adam/AdamW the
loss is linear, c_t . p, with c_1 = [1, -2] and c_2 = [3, 0.5], so the gradients are fixed numbers
and every intermediate (m, v, bias corrections) can be written out below.
"""
import numpy as np
import pytest

from tinyeff import Tensor, nn
from tinyeff.optim import SGD, Adam, AdamW

EPS = 1e-8


def param():
    return nn.Parameter(np.array([1.0, -2.0]))


def sgd_steps(opt, p, steps=2):
    """grad = p (loss 0.5 * |p|^2), through autograd."""
    out = []
    for _ in range(steps):
        opt.zero_grad()
        ((p * p).sum() * 0.5).backward()
        opt.step()
        out.append(p.data.copy())
    return out


def linear_steps(opt, p, grads=([1.0, -2.0], [3.0, 0.5])):
    """grad_t = c_t (loss c_t . p), through autograd."""
    out = []
    for c in grads:
        opt.zero_grad()
        (p * Tensor(np.array(c))).sum().backward()
        opt.step()
        out.append(p.data.copy())
    return out


def test_sgd_plain_two_steps():
    p = param()
    p1, p2 = sgd_steps(SGD([p], lr=0.1), p)
    np.testing.assert_allclose(p1, [0.9, -1.8], rtol=1e-14)      # p - 0.1 p
    np.testing.assert_allclose(p2, [0.81, -1.62], rtol=1e-14)


def test_sgd_momentum_two_steps():
    p = param()
    p1, p2 = sgd_steps(SGD([p], lr=0.1, momentum=0.9), p)
    # step 1: buf = g = [1, -2];                      p = [1, -2] - 0.1 [1, -2] = [0.9, -1.8]
    # step 2: buf = 0.9 [1, -2] + [0.9, -1.8] = [1.8, -3.6]; p = [0.9, -1.8] - 0.1 buf = [0.72, -1.44]
    np.testing.assert_allclose(p1, [0.9, -1.8], rtol=1e-14)
    np.testing.assert_allclose(p2, [0.72, -1.44], rtol=1e-14)


def test_sgd_momentum_with_dampening_two_steps():
    p = param()
    _, p2 = sgd_steps(SGD([p], lr=0.1, momentum=0.9, dampening=0.5), p)
    # step 1: buf = g (no dampening on the first step), p = [0.9, -1.8]
    # step 2: buf = 0.9 [1, -2] + 0.5 [0.9, -1.8] = [1.35, -2.7]; p = [0.9 - 0.135, -1.8 + 0.27]
    np.testing.assert_allclose(p2, [0.765, -1.53], rtol=1e-14)


def test_sgd_nesterov_two_steps():
    p = param()
    p1, p2 = sgd_steps(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p)
    # step 1: buf = [1, -2]; g + 0.9 buf = [1.9, -3.8]; p = [0.81, -1.62]
    # step 2: g = [0.81, -1.62]; buf = 0.9 [1, -2] + g = [1.71, -3.42];
    #         g + 0.9 buf = [2.349, -4.698]; p = [0.81 - 0.2349, -1.62 + 0.4698] = [0.5751, -1.1502]
    np.testing.assert_allclose(p1, [0.81, -1.62], rtol=1e-14)
    np.testing.assert_allclose(p2, [0.5751, -1.1502], rtol=1e-14)


def test_sgd_weight_decay_two_steps():
    p = param()
    p1, p2 = sgd_steps(SGD([p], lr=0.1, weight_decay=0.1), p)
    # g = p + 0.1 p = 1.1 p; p <- p - 0.11 p = 0.89 p
    np.testing.assert_allclose(p1, [0.89, -1.78], rtol=1e-14)
    np.testing.assert_allclose(p2, [0.7921, -1.5842], rtol=1e-14)


def test_sgd_momentum_and_weight_decay_two_steps():
    p = param()
    _, p2 = sgd_steps(SGD([p], lr=0.1, momentum=0.5, weight_decay=1.0), p)
    # step 1: g = 2 p = [2, -4]; buf = [2, -4]; p = [0.8, -1.6]
    # step 2: g = 2 p = [1.6, -3.2]; buf = 0.5 [2, -4] + [1.6, -3.2] = [2.6, -5.2]; p = [0.54, -1.08]
    np.testing.assert_allclose(p2, [0.54, -1.08], rtol=1e-14)


def test_sgd_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([param()], lr=0.1, nesterov=True)


def test_adam_two_steps():
    p = param()
    p1, p2 = linear_steps(Adam([p], lr=0.1, betas=(0.9, 0.999), eps=EPS), p)
    # step 1: m = 0.1 g = [0.1, -0.2], v = 0.001 g^2 = [0.001, 0.004];
    #         m_hat = m / 0.1 = [1, -2], v_hat = v / 0.001 = [1, 4]
    expected1 = np.array([1.0 - 0.1 * 1.0 / (1.0 + EPS), -2.0 + 0.1 * 2.0 / (2.0 + EPS)])
    # step 2: g = [3, 0.5]; m = 0.9 [0.1, -0.2] + 0.1 [3, 0.5] = [0.39, -0.13]
    #         v = 0.999 [0.001, 0.004] + 0.001 [9, 0.25] = [0.009999, 0.004246]
    #         bias corrections 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999
    m_hat = np.array([0.39, -0.13]) / 0.19
    v_hat = np.array([0.009999, 0.004246]) / 0.001999
    expected2 = expected1 - 0.1 * m_hat / (np.sqrt(v_hat) + EPS)
    np.testing.assert_allclose(p1, expected1, rtol=1e-12)
    np.testing.assert_allclose(p2, expected2, rtol=1e-12)
    np.testing.assert_allclose(p2, [0.9 - 0.1 * 2.0526315789 / 2.2365157, -1.9 + 0.1 * 0.6842105263 / 1.4574162],
                               rtol=1e-7)


def test_adam_l2_weight_decay_enters_the_gradient():
    p = param()
    p1, p2 = linear_steps(Adam([p], lr=0.1, betas=(0.9, 0.999), eps=EPS, weight_decay=0.5), p)
    g1 = np.array([1.0, -2.0]) + 0.5 * np.array([1.0, -2.0])          # [1.5, -3]
    expected1 = np.array([1.0, -2.0]) - 0.1 * g1 / (np.abs(g1) + EPS)   # m_hat = g1, v_hat = g1^2
    g2 = np.array([3.0, 0.5]) + 0.5 * expected1                         # about [3.45, -0.45]
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1 ** 2 + 0.001 * g2 ** 2
    expected2 = expected1 - 0.1 * (m / 0.19) / (np.sqrt(v / 0.001999) + EPS)
    np.testing.assert_allclose(p1, expected1, rtol=1e-12)
    np.testing.assert_allclose(p2, expected2, rtol=1e-12)


def test_adamw_decay_is_decoupled_from_the_gradient():
    p = param()
    p1, p2 = linear_steps(AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=EPS, weight_decay=0.5), p)
    # step 1: p <- p (1 - 0.1 * 0.5) = [0.95, -1.9], then the plain Adam step of test_adam_two_steps
    expected1 = np.array([0.95 - 0.1 * 1.0 / (1.0 + EPS), -1.9 + 0.1 * 2.0 / (2.0 + EPS)])
    m_hat = np.array([0.39, -0.13]) / 0.19
    v_hat = np.array([0.009999, 0.004246]) / 0.001999
    expected2 = expected1 * 0.95 - 0.1 * m_hat / (np.sqrt(v_hat) + EPS)
    np.testing.assert_allclose(p1, expected1, rtol=1e-12)
    np.testing.assert_allclose(p2, expected2, rtol=1e-12)


def test_adamw_default_weight_decay_is_pytorch_default():
    assert AdamW([param()]).weight_decay == 1e-2


def test_step_skips_parameters_without_grad():
    a, b = param(), param()
    opt = SGD([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, -2.0])
    assert not np.array_equal(a.data, [1.0, -2.0])


def test_float32_parameter_stays_float32_after_adam_step():
    p = nn.Parameter(np.array([1.0, -2.0], np.float32))
    opt = Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.dtype == np.float32 and opt.state[0]["m"].dtype == np.float32


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, lr=0.1), lambda ps: AdamW(ps, lr=0.1)],
                         ids=["sgd", "adam", "adamw"])
def test_optimizer_state_dict_resumes_the_same_trajectory(make):
    p = param()
    opt = make([p])
    linear_steps(opt, p, grads=([1.0, -2.0],))
    saved_p, saved_state = p.data.copy(), {k: np.array(v) for k, v in opt.state_dict().items()}
    expected = linear_steps(opt, p, grads=([3.0, 0.5], [-1.0, 2.0]))
    q = nn.Parameter(saved_p)
    resumed = make([q])
    resumed.load_state_dict(saved_state)
    got = linear_steps(resumed, q, grads=([3.0, 0.5], [-1.0, 2.0]))
    np.testing.assert_array_equal(got, expected)
    assert resumed.step_count == opt.step_count


def test_empty_parameter_list_raises():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


def test_non_positive_lr_raises():
    with pytest.raises(ValueError, match="lr=0"):
        Adam([param()], lr=0)
