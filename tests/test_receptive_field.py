"""Receptive fields: the analytic recursion against hand-computed values and against the
support of a gradient (through leeml.models.CNN and through lax), on >= 5 architectures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leeml import receptive_field as rf
from leeml.models import CNN

L = rf.Layer


def test_recursion_matches_hand_computed_fields():
  # Two 3x3 convs: R = 1 + 2 + 2 = 5 (the lecture's "deeper layers see larger fields").
  f = rf.receptive_field_1d([L("conv", 3), L("conv", 3)], 16)
  assert (f.size, f.jump, f.offset, f.out_size) == (5, 1, -2, 16)
  # conv3 -> pool2 -> conv3 -> pool2 (the default CNN): R = 1+2+1+4+2 = 10, J = 4,
  # offset -1 (first conv) - 1*2 (second conv, jump 2) = -3.
  f = rf.receptive_field_1d(rf.layers_from_cnn(dict(channels=(8, 8), kernel_size=3)), 28)
  assert (f.size, f.jump, f.offset, f.out_size) == (10, 4, -3, 7)
  # VALID, stride 2, k5: 28 -> 12 -> 4; R = 1 + 4 + 4*2 = 13, offset 0.
  f = rf.receptive_field_1d([L("conv", 5, 2, "VALID"), L("conv", 5, 2, "VALID")], 28)
  assert (f.size, f.jump, f.offset, f.out_size) == (13, 4, 0, 4)
  # Dilation 2 on a 3-tap kernel spans 5 pixels.
  assert rf.receptive_field_1d([L("conv", 3, 1, "SAME", 2)], 9).size == 5


@pytest.mark.parametrize("n,k,s", [(28, 3, 2), (27, 4, 2), (16, 5, 3), (10, 2, 1)])
def test_same_padding_and_sizes_match_lax(n, k, s):
  layer = L("conv", k, s, "SAME")
  x = jnp.zeros((1, n, n, 1))
  y = jax.lax.conv_general_dilated(x, jnp.zeros((k, k, 1, 1)), (s, s), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert y.shape[1] == rf.output_size(n, layer)
  lo, hi = rf.pads(n, layer)
  padded = jax.lax.conv_general_dilated(x, jnp.zeros((k, k, 1, 1)), (s, s), ((lo, hi),) * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert padded.shape == y.shape


CNN_ARCHS = [
    dict(channels=(4, 8), kernel_size=3, pool="max"),
    dict(channels=(4, 4, 4), kernel_size=5, pool="none"),
    dict(channels=(4, 8, 8), kernel_size=3, strides=2, padding="VALID", pool="none"),
    dict(channels=(4, 8), kernel_size=4, strides=2, padding="SAME", pool="avg"),
    dict(channels=(2, 2), kernel_size=7, strides=1, padding="VALID", pool="max"),
]


@pytest.mark.parametrize("arch", CNN_ARCHS, ids=lambda a: "-".join(f"{v}" for v in a.values()))
def test_cnn_model_field_equals_gradient_support(arch):
  r = rf.compare(rf.layers_from_cnn(arch), (28, 28, 1),
                 lambda s, u: rf.cnn_unit_fn(arch, s, u))
  assert r["agree"], (r["analytic"], r["empirical"])
  assert r["rectangle"]


@pytest.mark.parametrize("arch", CNN_ARCHS[:1] + CNN_ARCHS[2:3], ids=("default", "s2-valid"))
def test_corner_unit_field_is_clipped_by_the_border(arch):
  layers = rf.layers_from_cnn(arch)
  fields = rf.receptive_field(layers, (28, 28))
  unit = (0, fields[1].out_size - 1)
  r = rf.compare(layers, (28, 28, 1), lambda s, u: rf.cnn_unit_fn(arch, s, u), unit=unit)
  assert r["agree"] and r["rectangle"], (r["analytic"], r["empirical"])
  assert r["analytic"][0][0] == 0  # starts in the padding, clipped to row 0


def test_layer_lists_with_dilation_and_explicit_padding():
  shape = (28, 28, 1)
  holes = [L("conv", 3, 1, "SAME", 2)]   # taps at -2, 0, +2: a field with holes
  r = rf.compare(holes, shape)
  assert r["agree"] and not r["rectangle"]
  assert r["support"].sum() == 9
  mixed = [L("conv", 3, 1, "SAME", 2), L("conv", 3), L("pool", 2, 2, "VALID"),
           L("conv", 3, 2, 1)]
  r = rf.compare(mixed, shape)
  assert r["agree"] and r["rectangle"] and r["size"] == (12, 12)


def test_a_wrong_field_is_detected():
  # The comparison can fail: a 3x3 layer list against a 5x5 conv's gradient.
  arch = dict(channels=(2,), kernel_size=5, pool="none")
  r = rf.compare([L("conv", 3, features=2)], (12, 12, 1),
                 lambda s, u: rf.cnn_unit_fn(arch, s, u))
  assert not r["agree"]


def test_cnn_strides_and_padding_change_shapes_like_nn_conv():
  x = jnp.zeros((2, 28, 28, 1))
  for arch in CNN_ARCHS:
    model = CNN(num_outputs=3, dense_width=0, **arch)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)["params"]
    h, w, c = rf.feature_shapes(rf.layers_from_cnn(arch), (28, 28, 1))[-1]
    assert params["head"]["kernel"].shape == (h * w * c, 3)
  with pytest.raises(ValueError, match="padding"):
    CNN(num_outputs=3, padding="FULL").init(jax.random.PRNGKey(0), x)


def test_strided_cnn_equals_lax_convolution():
  # The nn.Conv fallback (stride 2, VALID) computes the convolution it claims to.
  model = CNN(num_outputs=1, channels=(3,), kernel_size=3, strides=2, padding="VALID",
              pool="none", dense_width=0, activation="identity")
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 9, 9, 1))
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  k, b = params["conv_0"]["kernel"], params["conv_0"]["bias"]
  ref = jax.lax.conv_general_dilated(x, k, (2, 2), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
  head = params["head"]
  out = model.apply({"params": params}, x)
  np.testing.assert_allclose(out, ref.reshape(1, -1) @ head["kernel"] + head["bias"],
                             rtol=1e-5, atol=1e-5)
