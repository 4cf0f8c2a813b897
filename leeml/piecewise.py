"""Lectures 1-2: a ReLU network of one input is a piecewise-linear function, exactly.

Three pieces of the lecture's picture, computed from parameters (no sampling):

* `linear_regions(params, domain)`: the exact breakpoints of a 1-D-input MLP with
  piecewise-linear activations (relu, hard_sigmoid, identity; plain or residual), as
  held by `leeml.models.MLP` (`dense_0..dense_{d-1}`, `head`). Intervals are propagated
  layer by layer: on an interval every hidden unit is an affine function s*x + t of the
  input, so its kinks are solved for (x = (kink - t) / s), the interval is split there,
  and the unit's piece is fixed on each sub-interval.
* `grid_regions(params, domain)`: a second, independent count from a dense grid (a
  plain forward pass; activation patterns compared between neighbouring points).
* `sawtooth_params(L)`: Telgarsky's construction (Telgarsky 2016, "Benefits of depth in
  neural networks"): the triangle map t(x) = 2 relu(x) - 4 relu(x - 1/2) composed L
  times, a depth-L net of width 2 with 2^L linear pieces on [0, 1];
  `shallow_sawtooth_params(L)` the same function with one hidden layer (2^L units).
* `hard_sigmoid_params(xs, ys)`: lecture 1's "red curve = constant + sum of a set of
  hard sigmoids", as a 1-hidden-layer hard_sigmoid MLP, and `sigmoid_params` its
  sigmoid approximation (c * sigmoid(b + w x) for each hard sigmoid).

Geometry is done in numpy float64 (independent of jax's x64 flag): the sawtooth's
breakpoints at L = 8 are multiples of 1/256, and solving (kink - t) / s in float32 after
8 layers of slopes 2^l would leave near-duplicate breakpoints.
"""

import dataclasses

import numpy as np

from leeml.datasets import synthetic

# Piecewise-linear activations: kinks (ascending) and (slope, intercept) on each piece.
PIECEWISE_ACTIVATIONS = {
    "relu": ((0.0,), ((0.0, 0.0), (1.0, 0.0))),
    # leeml.models.layers.hard_sigmoid: 0.5 (relu(z + 1) - relu(z - 1)).
    "hard_sigmoid": ((-1.0, 1.0), ((0.0, 0.0), (0.5, 0.5), (0.0, 1.0))),
    "identity": ((), ((1.0, 0.0),)),
}


def _activation(name: str):
  if name not in PIECEWISE_ACTIVATIONS:
    raise ValueError(f"activation {name!r} is not piecewise linear; one of: "
                     f"{', '.join(sorted(PIECEWISE_ACTIVATIONS))}")
  return PIECEWISE_ACTIVATIONS[name]


def dense_layers(params) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(kernel, bias)] of an MLP's hidden layers then its head, in float64."""
  params = params.get("params", params)
  hidden = sorted((k for k in params if k.startswith("dense_")), key=lambda k: int(k[6:]))
  names = hidden + ["head"]
  return [(np.asarray(params[n]["kernel"], np.float64), np.asarray(params[n]["bias"], np.float64))
          for n in names]


@dataclasses.dataclass(frozen=True)
class Regions:
  """The exact piecewise-linear structure of f: R -> R^m on `domain`.

  `edges[i] < edges[i+1]` bound activation region i (a constant pattern of every hidden
  unit's piece); on it f(x) = slopes[i] * x + offsets[i]. `breakpoints` are the interior
  edges where f's slope really changes (adjacent regions with equal slopes merged), so
  `num_pieces = len(breakpoints) + 1 <= num_regions`.
  """
  edges: np.ndarray       # [R + 1]
  slopes: np.ndarray      # [R, m]
  offsets: np.ndarray     # [R, m]
  breakpoints: np.ndarray

  @property
  def num_regions(self) -> int:
    return len(self.edges) - 1

  @property
  def num_pieces(self) -> int:
    return len(self.breakpoints) + 1

  def __call__(self, x) -> np.ndarray:
    """Evaluates f from the pieces (a check that the geometry is the function)."""
    x = np.asarray(x, np.float64)
    i = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, self.num_regions - 1)
    return self.slopes[i] * x[:, None] + self.offsets[i]


def _inside(a: float, b: float) -> float:
  """A point strictly inside (a, b), also for infinite ends."""
  if np.isfinite(a) and np.isfinite(b):
    return 0.5 * (a + b)
  if np.isfinite(a):
    return a + 1.0
  if np.isfinite(b):
    return b - 1.0
  return 0.0


def linear_regions(params, domain=(-np.inf, np.inf), *, activation: str = "relu",
                   residual: bool = False, rtol: float = 1e-9) -> Regions:
  """Exact linear regions of a 1-D-input MLP on `domain` (see the module docstring).

  `rtol` decides when two breakpoints coincide or two slopes are equal (relative to the
  domain's width / the slopes' size): float64 rounding, not a sampling resolution.
  """
  kinks, pieces = _activation(activation)
  layers = dense_layers(params)
  if layers[0][0].shape[0] != 1:
    raise ValueError(f"input dimension is {layers[0][0].shape[0]}; exact regions need 1")
  lo, hi = float(domain[0]), float(domain[1])
  width = hi - lo if np.isfinite(hi - lo) else 1.0
  eps = rtol * max(width, 1.0)
  # Each interval: (a, b, S, T) with the current hidden vector h(x) = S x + T on (a, b).
  intervals = [(lo, hi, np.ones(1), np.zeros(1))]
  for li, (w, bias) in enumerate(layers[:-1]):
    new = []
    for a, b, s, t in intervals:
      ps, pt = s @ w, t @ w + bias  # pre-activations, affine in x
      cuts = []
      for k in kinks:
        nz = ps != 0
        x = (k - pt[nz]) / ps[nz]
        cuts.extend(x[(x > a + eps) & (x < b - eps)])
      cuts = np.unique(np.asarray(cuts, np.float64))
      bounds = [a]
      for c in cuts:  # merge cuts that coincide up to float rounding
        if c - bounds[-1] > eps:
          bounds.append(c)
      if b - bounds[-1] <= eps and len(bounds) > 1:
        bounds.pop()
      bounds.append(b)
      for a2, b2 in zip(bounds[:-1], bounds[1:]):
        z = ps * _inside(a2, b2) + pt
        piece = np.searchsorted(np.asarray(kinks), z)  # which piece each unit is on
        slope = np.array([pieces[p][0] for p in piece])
        icpt = np.array([pieces[p][1] for p in piece])
        s2, t2 = slope * ps, slope * pt + icpt
        if residual and li > 0:
          s2, t2 = s + s2, t + t2
        new.append((a2, b2, s2, t2))
    intervals = new
  w, bias = layers[-1]
  edges = np.array([iv[0] for iv in intervals] + [intervals[-1][1]])
  slopes = np.stack([iv[2] @ w for iv in intervals])
  offsets = np.stack([iv[3] @ w + bias for iv in intervals])
  scale = max(float(np.abs(slopes).max()), 1e-300)
  changed = np.abs(np.diff(slopes, axis=0)).max(axis=1) > rtol * scale
  return Regions(edges, slopes, offsets, edges[1:-1][changed])


def forward(params, x, *, activation: str = "relu", residual: bool = False,
            return_patterns: bool = False):
  """Plain float64 forward pass of the MLP on inputs x [N]; optionally each hidden unit's
  piece index per point (the activation pattern), concatenated over layers."""
  kinks, pieces = _activation(activation)
  slope = np.array([p[0] for p in pieces])
  icpt = np.array([p[1] for p in pieces])
  h = np.asarray(x, np.float64)[:, None]
  patterns = []
  layers = dense_layers(params)
  for li, (w, bias) in enumerate(layers[:-1]):
    z = h @ w + bias
    piece = np.searchsorted(np.asarray(kinks), z)
    y = slope[piece] * z + icpt[piece]
    h = h + y if (residual and li > 0) else y
    patterns.append(piece.astype(np.int8))
  out = h @ layers[-1][0] + layers[-1][1]
  if return_patterns:
    return out, np.concatenate(patterns, axis=1)
  return out


def grid_regions(params, domain, *, num_points: int = 200_001, activation: str = "relu",
                 residual: bool = False) -> int:
  """Number of activation regions seen on a dense grid of `domain` (the independent
  check of `linear_regions(...).num_regions`): 1 + pattern changes between neighbours.

  The grid is offset by an irrational fraction of a step so no point lands exactly on a
  dyadic breakpoint (where a unit sits at its kink). Regions narrower than the spacing
  can be missed, so this count is <= the exact one.
  """
  x = _grid(domain, num_points)
  _, pat = forward(params, x, activation=activation, residual=residual, return_patterns=True)
  return 1 + int(np.any(pat[1:] != pat[:-1], axis=1).sum())


_GRID_OFFSET = (np.sqrt(5.0) - 1.0) / 2.0  # irrational: never on a dyadic breakpoint


def _grid(domain, num_points: int) -> np.ndarray:
  lo, hi = float(domain[0]), float(domain[1])
  return lo + (np.arange(num_points) + _GRID_OFFSET) * ((hi - lo) / num_points)


def grid_visible_regions(regions: Regions, domain, num_points: int) -> int:
  """What `grid_regions` should see, predicted from the exact edges: 1 + the number of
  grid cells (between neighbouring grid points) holding at least one interior edge
  (two kinks closer than the spacing share a cell and show as one change; this assumes
  no unit switches twice within one cell, true for one hidden layer)."""
  x = _grid(domain, num_points)
  inner = regions.edges[1:-1]
  cells = np.searchsorted(x, inner, side="right")  # cell i lies between x[i-1] and x[i]
  cells = cells[(cells > 0) & (cells < num_points)]
  return 1 + len(np.unique(cells))


# ----------------------------------------------------------------------------- constructions


def _mlp_params(layers) -> dict:
  out = {f"dense_{i}": {"kernel": np.asarray(w, np.float64), "bias": np.asarray(b, np.float64)}
         for i, (w, b) in enumerate(layers[:-1])}
  out["head"] = {"kernel": np.asarray(layers[-1][0], np.float64),
                 "bias": np.asarray(layers[-1][1], np.float64)}
  return out


def sawtooth_params(depth: int) -> dict:
  """Telgarsky's sawtooth: MLP(depth, width=2, relu) params computing t^depth on [0, 1].

  Layer 1 computes (relu(x), relu(x - 1/2)); each next layer reads the previous triangle
  t = 2 u1 - 4 u2 (folded into its kernel) and does the same; the head outputs t.
  Parameters: 4 + 6 (depth - 1) + 3 = 6 depth + 1.
  """
  if depth < 1:
    raise ValueError(f"depth must be >= 1 (got {depth})")
  split = np.array([0.0, -0.5])
  layers = [(np.array([[1.0, 1.0]]), split)]
  fold = np.array([[2.0, 2.0], [-4.0, -4.0]])  # t = 2 u1 - 4 u2 fed to both next units
  layers += [(fold, split)] * (depth - 1)
  layers.append((np.array([[2.0], [-4.0]]), np.zeros(1)))
  return _mlp_params(layers)


def sawtooth(x, depth: int) -> np.ndarray:
  """t^depth(x) on [0, 1] in closed form (the `sawtooth` dataset's target)."""
  return synthetic.sawtooth_target(x, depth)


def num_params(params) -> int:
  return int(sum(w.size + b.size for w, b in dense_layers(params)))


def interpolating_relu_params(xs, ys) -> dict:
  """One hidden layer of ReLUs equal to the linear interpolation of (xs, ys) on
  [xs[0], xs[-1]]: one unit relu(x - xs[0]) for the first slope and one per interior
  breakpoint for each change of slope (len(xs) - 1 units)."""
  xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
  slopes = np.diff(ys) / np.diff(xs)
  knots = xs[:-1]
  heights = np.concatenate([slopes[:1], np.diff(slopes)])
  kernel = np.ones((1, len(knots)))
  return _mlp_params([(kernel, -knots), (heights[:, None], np.array([ys[0]]))])


def shallow_sawtooth_params(depth: int) -> dict:
  """The depth-`depth` sawtooth with one hidden layer: 2^depth units (2^depth - 1 interior
  breakpoints plus one for the first slope)."""
  xs = np.linspace(0.0, 1.0, 2 ** depth + 1)
  return interpolating_relu_params(xs, sawtooth(xs, depth))


def hard_sigmoid_params(xs, ys) -> dict:
  """Lecture 1: a piecewise-linear curve = constant + sum of hard sigmoids, one per segment.

  Segment i (xs[i] -> xs[i+1]) is c_i * hard_sigmoid(w_i x + b_i), a ramp of height
  c_i = ys[i+1] - ys[i] from xs[i] to xs[i+1] (hard_sigmoid ramps over z in [-1, 1]);
  the constant is ys[0] (the head bias). Exact on [xs[0], xs[-1]], flat outside.
  """
  xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
  dx = np.diff(xs)
  w = 2.0 / dx
  b = -(xs[:-1] + xs[1:]) / dx
  return _mlp_params([(w[None, :], b), (np.diff(ys)[:, None], np.array([ys[0]]))])


def sigmoid_params(hard_params, sharpness: float = 1.0) -> dict:
  """c * sigmoid(s (b + w x)) for each hard sigmoid c * hard_sigmoid(b + w x).

  s = 2 matches the hard sigmoid's slope (1/2) at the centre; larger s is sharper.
  The result is an MLP with activation='sigmoid' (lecture 1: "sigmoid approximates the
  hard sigmoid").
  """
  layers = dense_layers(hard_params)
  (w, b), head = layers[0], layers[-1]
  s = 2.0 * sharpness
  return _mlp_params([(s * w, s * b), head])


def sigmoid_forward(params, x) -> np.ndarray:
  """Forward pass of a 1-hidden-layer sigmoid MLP in float64."""
  (w, b), (v, c) = dense_layers(params)
  z = np.asarray(x, np.float64)[:, None] @ w + b
  return (1.0 / (1.0 + np.exp(-z))) @ v + c
